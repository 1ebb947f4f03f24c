//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

// Package kubectl_test checks, with the upstream kubectl built from go.mod,
// that `kubectl get` prints against Havre the columns it prints against
// kube-apiserver: kube-apiserver's per-kind Tables (internal/printers).
package kubectl_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

// check returns a function that fails t if the call passed to it failed:
// check(t)(client.Create(...)).
func check(t testing.TB) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fatalIf fails t on err.
func fatalIf(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// headers are the columns kubectl prints for each resource, as upstream,
// by default and with -o wide.
var headers = map[string]struct{ std, wide string }{
	"pods":                     {"NAME READY STATUS RESTARTS AGE", "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"},
	"services":                 {"NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"},
	"nodes":                    {"NAME STATUS ROLES AGE VERSION", "NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"},
	"namespaces":               {"NAME STATUS AGE", ""},
	"configmaps":               {"NAME DATA AGE", ""},
	"secrets":                  {"NAME TYPE DATA AGE", ""},
	"serviceaccounts":          {"NAME AGE", ""},
	"endpoints":                {"NAME ENDPOINTS AGE", ""},
	"events":                   {"LAST SEEN TYPE REASON OBJECT MESSAGE", "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"},
	"events.events.k8s.io":     {"LAST SEEN TYPE REASON OBJECT MESSAGE", "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME"},
	"limitranges":              {"NAME AGE", ""},
	"resourcequotas":           {"NAME REQUEST LIMIT AGE", ""},
	"persistentvolumes":        {"NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE", "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE VOLUMEMODE"},
	"persistentvolumeclaims":   {"NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE", "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE VOLUMEMODE"},
	"deployments":              {"NAME READY UP-TO-DATE AVAILABLE AGE", "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"},
	"replicasets":              {"NAME DESIRED CURRENT READY AGE", "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"},
	"statefulsets":             {"NAME READY AGE", "NAME READY AGE CONTAINERS IMAGES"},
	"daemonsets":               {"NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE", "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE CONTAINERS IMAGES SELECTOR"},
	"controllerrevisions":      {"NAME CONTROLLER REVISION AGE", ""},
	"jobs":                     {"NAME STATUS COMPLETIONS DURATION AGE", "NAME STATUS COMPLETIONS DURATION AGE CONTAINERS IMAGES SELECTOR"},
	"cronjobs":                 {"NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE", "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR"},
	"horizontalpodautoscalers": {"NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE", ""},
	"leases":                   {"NAME HOLDER AGE", ""},
	"endpointslices":           {"NAME ADDRESSTYPE PORTS ENDPOINTS AGE", ""},
	"ingresses":                {"NAME CLASS HOSTS ADDRESS PORTS AGE", ""},
	"ingressclasses":           {"NAME CONTROLLER PARAMETERS AGE", ""},
	"networkpolicies":          {"NAME POD-SELECTOR AGE", ""},
	"poddisruptionbudgets":     {"NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE", ""},
	"priorityclasses":          {"NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY", ""},
	"roles":                    {"NAME CREATED AT", ""},
	"clusterroles":             {"NAME CREATED AT", ""},
	"rolebindings":             {"NAME ROLE AGE", "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS"},
	"clusterrolebindings":      {"NAME ROLE AGE", "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS"},
	"storageclasses":           {"NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE", ""},
	"csistoragecapacities":     {"NAME STORAGECLASSNAME CAPACITY", ""},
	"csidrivers":               {"NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE", ""},
	"csinodes":                 {"NAME DRIVERS AGE", ""},
	"volumeattachments":        {"NAME ATTACHER PV NODE ATTACHED AGE", ""},
	"volumeattributesclasses":  {"NAME DRIVERNAME AGE", ""},
}

// wideHeader returns the -o wide header of a resource (its default one when
// it has no wide columns).
func wideHeader(resource string) string {
	if h := headers[resource]; h.wide != "" {
		return h.wide
	}
	return headers[resource].std
}

// table is what kubectl printed as a table: the column names (which may
// hold spaces) and the rows' cells by column name.
type table struct {
	columns []string
	rows    []map[string]string
}

// columnRE matches a column name in a header line: words joined by single
// spaces (kubectl pads columns with at least three).
var columnRE = regexp.MustCompile(`\S+(?: \S+)*`)

// parseTable cuts kubectl's output into cells at the header's column
// starts, which tabwriter aligns on every line.
func parseTable(t testing.TB, out string) table {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("kubectl printed no table:\n%s", out)
	}
	header := lines[0]
	spans := columnRE.FindAllStringIndex(header, -1)
	var tb table
	for _, s := range spans {
		tb.columns = append(tb.columns, header[s[0]:s[1]])
	}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i, s := range spans {
			start, end := s[0], len(line)
			if i+1 < len(spans) {
				end = min(spans[i+1][0], len(line))
			}
			if start < len(line) {
				row[tb.columns[i]] = strings.TrimSpace(line[start:end])
			} else {
				row[tb.columns[i]] = ""
			}
		}
		tb.rows = append(tb.rows, row)
	}
	return tb
}

// header returns the header as single-spaced text.
func (tb table) header() string { return strings.Join(tb.columns, " ") }

// row returns the first row whose cell in column is value, failing t if
// there is none.
func (tb table) row(t testing.TB, column, value string) map[string]string {
	t.Helper()
	for _, r := range tb.rows {
		if r[column] == value {
			return r
		}
	}
	t.Fatalf("no row with %s %q in %v", column, value, tb.rows)
	return nil
}

// expectCells fails t unless row has the given cells.
func expectCells(t testing.TB, row map[string]string, want map[string]string) {
	t.Helper()
	for col, w := range want {
		if got, found := row[col]; !found || got != w {
			t.Errorf("%s = %q, want %q (row %v)", col, got, w, row)
		}
	}
}

// get runs `kubectl get` and parses the table it prints.
func get(t *testing.T, s *framework.Server, args ...string) table {
	t.Helper()
	return parseTable(t, s.MustKubectl(t, append([]string{"get"}, args...)...))
}

// TestTables creates objects of every kind Havre serves and checks the
// columns and cells `kubectl get` prints for them.
func TestTables(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	// The test writes the workloads' status, and the Service's Endpoints
	// and EndpointSlice, itself: their controllers would overwrite them.
	// The PersistentVolume controller would bind the claim to the volume.
	s := framework.StartServer(t, framework.WithoutWorkloadControllers("endpoints-controller", "endpointslice-controller",
		"persistentvolume-binder-controller"))
	framework.Kubectl(t) // built before the subtests, which it would slow
	cs := s.Clientset()
	const ns = "tables"
	check(t)(cs.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	createObjects(t, cs, ns)

	// Every resource prints its upstream header, by default and wide, and a
	// row for the object named "web" (or its cluster-scoped "tables-web").
	for _, resource := range slices.Sorted(maps.Keys(headers)) {
		h := headers[resource]
		t.Run("Header/"+resource, func(t *testing.T) {
			args := []string{resource}
			if !clusterScoped[resource] {
				args = append(args, "-n", ns)
			}
			name := objectName[resource]
			if name == "" {
				name = "web"
			}
			tb := get(t, s, args...)
			if got := tb.header(); got != h.std {
				t.Errorf("header %q, want %q", got, h.std)
			}
			column := "NAME"
			if strings.HasPrefix(resource, "events") {
				column = "OBJECT"
			}
			tb.row(t, column, name)
			if got := get(t, s, append(args, "-o", "wide")...).header(); got != wideHeader(resource) {
				t.Errorf("-o wide header %q, want %q", got, wideHeader(resource))
			}
		})
	}

	t.Run("Cells", func(t *testing.T) { testCells(t, s, ns) })
	t.Run("Wide", func(t *testing.T) {
		tb := get(t, s, "deployments", "-n", ns, "-o", "wide")
		expectCells(t, tb.row(t, "NAME", "web"), map[string]string{
			"READY": "2/3", "UP-TO-DATE": "3", "AVAILABLE": "1",
			"CONTAINERS": "web", "IMAGES": "registry.example/web:1.0", "SELECTOR": "app=web",
		})
		tb = get(t, s, "pods", "-n", ns, "-o", "wide")
		expectCells(t, tb.row(t, "NAME", "web"), map[string]string{
			"READY": "1/1", "STATUS": "Running", "IP": "10.244.0.7", "NODE": "tables-web",
			"NOMINATED NODE": "<none>", "READINESS GATES": "<none>",
		})
		tb = get(t, s, "nodes", "tables-web", "-o", "wide")
		expectCells(t, tb.row(t, "NAME", "tables-web"), map[string]string{
			"STATUS": "Ready", "ROLES": "worker", "VERSION": "v1.37.2", "INTERNAL-IP": "192.168.1.10", "EXTERNAL-IP": "<none>",
			"OS-IMAGE": "Debian GNU/Linux 13 (trixie)", "KERNEL-VERSION": "6.12.0", "CONTAINER-RUNTIME": "containerd://2.1.0",
		})
	})
	t.Run("ShowLabels", func(t *testing.T) {
		tb := get(t, s, "deployments", "-n", ns, "--show-labels")
		if got, want := tb.header(), headers["deployments"].std+" LABELS"; got != want {
			t.Errorf("header %q, want %q", got, want)
		}
		expectCells(t, tb.row(t, "NAME", "web"), map[string]string{"READY": "2/3", "LABELS": "app=web,tier=frontend"})
	})
	t.Run("LabelColumns", func(t *testing.T) {
		tb := get(t, s, "pods", "-n", ns, "-L", "app", "-L", "missing")
		if got, want := tb.header(), headers["pods"].std+" APP MISSING"; got != want {
			t.Errorf("header %q, want %q", got, want)
		}
		expectCells(t, tb.row(t, "NAME", "web"), map[string]string{"STATUS": "Running", "APP": "web", "MISSING": ""})
	})
	t.Run("AllNamespaces", func(t *testing.T) {
		tb := get(t, s, "deployments", "-A")
		if got, want := tb.header(), "NAMESPACE "+headers["deployments"].std; got != want {
			t.Errorf("header %q, want %q", got, want)
		}
		expectCells(t, tb.row(t, "NAMESPACE", ns), map[string]string{"NAME": "web", "READY": "2/3"})
		tb = get(t, s, "events", "-A")
		if got, want := tb.header(), "NAMESPACE "+headers["events"].std; got != want {
			t.Errorf("events header %q, want %q", got, want)
		}
	})
	t.Run("SingleObject", func(t *testing.T) {
		tb := get(t, s, "service", "web", "-n", ns)
		if got := tb.header(); got != headers["services"].std || len(tb.rows) != 1 {
			t.Errorf("header %q, %d rows", got, len(tb.rows))
		}
	})
	t.Run("Category", func(t *testing.T) {
		out := s.MustKubectl(t, "get", "all", "-n", ns)
		for _, want := range []string{"NAME READY STATUS RESTARTS AGE", "NAME READY UP-TO-DATE AVAILABLE AGE", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"} {
			if !hasLineWithFields(out, strings.Fields(want)) {
				t.Errorf("kubectl get all has no header %q:\n%s", want, out)
			}
		}
	})
	t.Run("EmptyList", func(t *testing.T) { testEmptyList(t, s) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, s, cs, ns) })
}

// clusterScoped are the resources without a namespace.
var clusterScoped = map[string]bool{
	"nodes": true, "namespaces": true, "persistentvolumes": true,
	"ingressclasses": true, "priorityclasses": true, "storageclasses": true,
	"csidrivers": true, "csinodes": true, "volumeattachments": true, "volumeattributesclasses": true,
	"clusterroles": true, "clusterrolebindings": true,
}

// objectName is the name of the object of each resource checked for a row,
// when it is not "web".
var objectName = map[string]string{
	"namespaces": "tables", "nodes": "tables-web", "persistentvolumes": "tables-web",
	"ingressclasses": "tables-web", "priorityclasses": "tables-web", "storageclasses": "tables-web",
	"csidrivers": "tables-web", "csinodes": "tables-web", "volumeattachments": "tables-web", "volumeattributesclasses": "tables-web",
	"clusterroles": "tables-web", "clusterrolebindings": "tables-web",
	"events": "pod/web", "events.events.k8s.io": "pod/web",
}

func hasLineWithFields(out string, fields []string) bool {
	for _, line := range strings.Split(out, "\n") {
		if slices.Equal(strings.Fields(line), fields) {
			return true
		}
	}
	return false
}

var labels = map[string]string{"app": "web", "tier": "frontend"}

func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1.0"}}},
	}
}

// createObjects creates, in ns and the cluster, one object of every kind
// (named "web", or "tables-web" when cluster-scoped), with statuses set so
// that their cells are known.
func createObjects(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	c := ctx(t)
	create := metav1.CreateOptions{}
	update := metav1.UpdateOptions{}
	meta := metav1.ObjectMeta{Name: "web", Labels: labels}
	clusterMeta := metav1.ObjectMeta{Name: "tables-web", Labels: labels}
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

	// core/v1
	check(t)(cs.CoreV1().ConfigMaps(ns).Create(c, &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"a": "1", "b": "2"}}, create))
	check(t)(cs.CoreV1().Secrets(ns).Create(c, &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"password": []byte("x")}}, create))
	check(t)(cs.CoreV1().ServiceAccounts(ns).Create(c, &corev1.ServiceAccount{ObjectMeta: meta}, create))
	check(t)(cs.CoreV1().Services(ns).Create(c, &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
	}}, create))
	check(t)(cs.CoreV1().Endpoints(ns).Create(c, &corev1.Endpoints{ObjectMeta: meta, Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.0.7"}}, Ports: []corev1.EndpointPort{{Port: 8080}},
	}}}, create))
	check(t)(cs.CoreV1().LimitRanges(ns).Create(c, &corev1.LimitRange{ObjectMeta: meta, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer, Default: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
	}}}}, create))
	quota, err := cs.CoreV1().ResourceQuotas(ns).Create(c, &corev1.ResourceQuota{ObjectMeta: meta, Spec: corev1.ResourceQuotaSpec{
		Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")},
	}}, create)
	fatalIf(t, err)
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}}
	check(t)(cs.CoreV1().ResourceQuotas(ns).UpdateStatus(c, quota, update))

	node, err := cs.CoreV1().Nodes().Create(c, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "tables-web", Labels: map[string]string{"node-role.kubernetes.io/worker": ""},
	}}, create)
	fatalIf(t, err)
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 13 (trixie)", KernelVersion: "6.12.0",
		ContainerRuntimeVersion: "containerd://2.1.0", OperatingSystem: "linux", Architecture: "amd64"}
	check(t)(cs.CoreV1().Nodes().UpdateStatus(c, node, update))

	pod, err := cs.CoreV1().Pods(ns).Create(c, &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{
		NodeName: "tables-web", Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1.0"}},
	}}, create)
	fatalIf(t, err)
	setPodRunning(pod)
	check(t)(cs.CoreV1().Pods(ns).UpdateStatus(c, pod, update))
	crash, err := cs.CoreV1().Pods(ns).Create(c, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crash"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "crash", Image: "registry.example/crash:1"}},
	}}, create)
	fatalIf(t, err)
	crash.Status.Phase = corev1.PodRunning
	crash.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "crash", Image: "registry.example/crash:1", RestartCount: 4,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(time.Now().Add(-20 * time.Minute))}},
	}}
	check(t)(cs.CoreV1().Pods(ns).UpdateStatus(c, crash, update))

	fs := corev1.PersistentVolumeFilesystem
	check(t)(cs.CoreV1().PersistentVolumes().Create(c, &corev1.PersistentVolume{ObjectMeta: clusterMeta, Spec: corev1.PersistentVolumeSpec{
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: "tables-web", VolumeMode: &fs,
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
		PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/web"}},
	}}, create))
	check(t)(cs.CoreV1().PersistentVolumeClaims(ns).Create(c, &corev1.PersistentVolumeClaim{ObjectMeta: meta, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To("tables-web"),
		Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}, create))
	check(t)(cs.CoreV1().Events(ns).Create(c, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web", FieldPath: "spec.containers{web}"},
		Reason:         "Pulled", Message: "Container image already present on machine", Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: "tables-web"},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 3,
	}, create))

	// apps/v1
	deploy, err := cs.AppsV1().Deployments(ns).Create(c, &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](3), Selector: selector, Template: template(),
	}}, create)
	fatalIf(t, err)
	deploy.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1}
	check(t)(cs.AppsV1().Deployments(ns).UpdateStatus(c, deploy, update))
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(c, &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{
		Replicas: ptr.To[int32](2), Selector: selector, Template: template(),
	}}, create)
	fatalIf(t, err)
	rs.Status = appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1}
	check(t)(cs.AppsV1().ReplicaSets(ns).UpdateStatus(c, rs, update))
	sts, err := cs.AppsV1().StatefulSets(ns).Create(c, &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
		Replicas: ptr.To[int32](2), Selector: selector, Template: template(), ServiceName: "web",
	}}, create)
	fatalIf(t, err)
	sts.Status = appsv1.StatefulSetStatus{Replicas: 2, ReadyReplicas: 1}
	check(t)(cs.AppsV1().StatefulSets(ns).UpdateStatus(c, sts, update))
	dsTemplate := template()
	dsTemplate.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	ds, err := cs.AppsV1().DaemonSets(ns).Create(c, &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{
		Selector: selector, Template: dsTemplate,
	}}, create)
	fatalIf(t, err)
	ds.Status = appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}
	check(t)(cs.AppsV1().DaemonSets(ns).UpdateStatus(c, ds, update))
	crMeta := meta
	crMeta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "web", UID: ds.UID, Controller: ptr.To(true)}}
	check(t)(cs.AppsV1().ControllerRevisions(ns).Create(c, &appsv1.ControllerRevision{ObjectMeta: crMeta, Revision: 1,
		Data: runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}}, create))

	// batch/v1
	jobTemplate := template()
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyNever
	jobTemplate.Labels = nil
	check(t)(cs.BatchV1().Jobs(ns).Create(c, &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{
		Completions: ptr.To[int32](3), Template: jobTemplate,
	}}, create))
	check(t)(cs.BatchV1().CronJobs(ns).Create(c, &batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{
		Schedule: "0 3 * * *", TimeZone: ptr.To("Etc/UTC"),
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate}},
	}}, create))

	// The other groups.
	check(t)(cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(c, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 5,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](80)},
			}}},
		}}, create))
	check(t)(cs.CoordinationV1().Leases(ns).Create(c, &coordinationv1.Lease{ObjectMeta: meta, Spec: coordinationv1.LeaseSpec{
		HolderIdentity: ptr.To("web-0"), LeaseDurationSeconds: ptr.To[int32](15),
	}}, create))
	check(t)(cs.DiscoveryV1().EndpointSlices(ns).Create(c, &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.7"}}},
	}, create))
	check(t)(cs.NetworkingV1().IngressClasses().Create(c, &networkingv1.IngressClass{ObjectMeta: clusterMeta, Spec: networkingv1.IngressClassSpec{
		Controller: "example.com/ingress",
	}}, create))
	pathType := networkingv1.PathTypePrefix
	check(t)(cs.NetworkingV1().Ingresses(ns).Create(c, &networkingv1.Ingress{ObjectMeta: meta, Spec: networkingv1.IngressSpec{
		IngressClassName: ptr.To("tables-web"),
		Rules: []networkingv1.IngressRule{{Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}},
			}}},
		}}}},
	}}, create))
	check(t)(cs.NetworkingV1().NetworkPolicies(ns).Create(c, &networkingv1.NetworkPolicy{ObjectMeta: meta, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: *selector,
	}}, create))
	check(t)(cs.PolicyV1().PodDisruptionBudgets(ns).Create(c, &policyv1.PodDisruptionBudget{ObjectMeta: meta, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: selector,
	}}, create))
	check(t)(cs.SchedulingV1().PriorityClasses().Create(c, &schedulingv1.PriorityClass{ObjectMeta: clusterMeta, Value: 1000}, create))
	check(t)(cs.StorageV1().StorageClasses().Create(c, &storagev1.StorageClass{ObjectMeta: clusterMeta, Provisioner: "example.com/local"}, create))
	check(t)(cs.StorageV1().CSIStorageCapacities(ns).Create(c, &storagev1.CSIStorageCapacity{ObjectMeta: meta, StorageClassName: "tables-web",
		Capacity: ptr.To(resource.MustParse("10Gi"))}, create))
	check(t)(cs.StorageV1().CSIDrivers().Create(c, &storagev1.CSIDriver{ObjectMeta: clusterMeta, Spec: storagev1.CSIDriverSpec{
		AttachRequired: ptr.To(false), TokenRequests: []storagev1.TokenRequest{{Audience: "vault"}},
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}}}, create))
	check(t)(cs.StorageV1().CSINodes().Create(c, &storagev1.CSINode{ObjectMeta: clusterMeta, Spec: storagev1.CSINodeSpec{
		Drivers: []storagev1.CSINodeDriver{{Name: "tables-web", NodeID: "tables-web"}}}}, create))
	va, err := cs.StorageV1().VolumeAttachments().Create(c, &storagev1.VolumeAttachment{ObjectMeta: clusterMeta, Spec: storagev1.VolumeAttachmentSpec{
		Attacher: "tables-web", NodeName: "tables-web", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("tables-web")}}}, create)
	check(t)(va, err)
	va.Status.Attached = true
	check(t)(cs.StorageV1().VolumeAttachments().UpdateStatus(c, va, metav1.UpdateOptions{}))
	check(t)(cs.StorageV1().VolumeAttributesClasses().Create(c, &storagev1.VolumeAttributesClass{ObjectMeta: clusterMeta,
		DriverName: "example.com/local", Parameters: map[string]string{"iops": "3000"}}, create))
	rule := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	subjects := []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "devs"}, {Kind: "ServiceAccount", Namespace: ns, Name: "default"}}
	check(t)(cs.RbacV1().Roles(ns).Create(c, &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{rule}}, create))
	check(t)(cs.RbacV1().ClusterRoles().Create(c, &rbacv1.ClusterRole{ObjectMeta: clusterMeta, Rules: []rbacv1.PolicyRule{rule}}, create))
	check(t)(cs.RbacV1().RoleBindings(ns).Create(c, &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "web"}, Subjects: subjects}, create))
	check(t)(cs.RbacV1().ClusterRoleBindings().Create(c, &rbacv1.ClusterRoleBinding{ObjectMeta: clusterMeta,
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "tables-web"}, Subjects: subjects}, create))
}

func setPodRunning(pod *corev1.Pod) {
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.244.0.7"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.7"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}
}

// testCells checks the cells of the objects createObjects made.
func testCells(t *testing.T, s *framework.Server, ns string) {
	tests := []struct {
		args []string
		name string
		want map[string]string
	}{
		{[]string{"pods"}, "web", map[string]string{"READY": "1/1", "STATUS": "Running", "RESTARTS": "0"}},
		{[]string{"pods"}, "crash", map[string]string{"READY": "0/1", "STATUS": "CrashLoopBackOff", "RESTARTS": "4 (20m ago)"}},
		{[]string{"services"}, "web", map[string]string{"TYPE": "ClusterIP", "EXTERNAL-IP": "<none>", "PORT(S)": "80/TCP"}},
		{[]string{"configmaps"}, "web", map[string]string{"DATA": "2"}},
		{[]string{"secrets"}, "web", map[string]string{"TYPE": "Opaque", "DATA": "1"}},
		{[]string{"endpoints"}, "web", map[string]string{"ENDPOINTS": "10.244.0.7:8080"}},
		{[]string{"resourcequotas"}, "web", map[string]string{"REQUEST": "pods: 1/10", "LIMIT": ""}},
		{[]string{"persistentvolumes"}, "tables-web", map[string]string{"CAPACITY": "10Gi", "ACCESS MODES": "RWO", "RECLAIM POLICY": "Retain",
			"STORAGECLASS": "tables-web", "VOLUMEATTRIBUTESCLASS": "<unset>"}},
		{[]string{"persistentvolumeclaims"}, "web", map[string]string{"VOLUME": "", "STORAGECLASS": "tables-web", "VOLUMEATTRIBUTESCLASS": "<unset>"}},
		{[]string{"deployments"}, "web", map[string]string{"READY": "2/3", "UP-TO-DATE": "3", "AVAILABLE": "1"}},
		{[]string{"replicasets"}, "web", map[string]string{"DESIRED": "2", "CURRENT": "2", "READY": "1"}},
		{[]string{"statefulsets"}, "web", map[string]string{"READY": "1/2"}},
		{[]string{"daemonsets"}, "web", map[string]string{"DESIRED": "1", "CURRENT": "1", "READY": "1", "UP-TO-DATE": "1", "AVAILABLE": "1",
			"NODE SELECTOR": "kubernetes.io/os=linux"}},
		{[]string{"controllerrevisions"}, "web", map[string]string{"CONTROLLER": "daemonset.apps/web", "REVISION": "1"}},
		{[]string{"jobs"}, "web", map[string]string{"STATUS": "Running", "COMPLETIONS": "0/3", "DURATION": ""}},
		{[]string{"cronjobs"}, "web", map[string]string{"SCHEDULE": "0 3 * * *", "TIMEZONE": "Etc/UTC", "SUSPEND": "False", "ACTIVE": "0", "LAST SCHEDULE": "<none>"}},
		{[]string{"horizontalpodautoscalers"}, "web", map[string]string{"REFERENCE": "Deployment/web", "TARGETS": "cpu: <unknown>/80%", "MINPODS": "1", "MAXPODS": "5"}},
		{[]string{"leases"}, "web", map[string]string{"HOLDER": "web-0"}},
		{[]string{"endpointslices"}, "web", map[string]string{"ADDRESSTYPE": "IPv4", "PORTS": "8080", "ENDPOINTS": "10.244.0.7"}},
		{[]string{"ingresses"}, "web", map[string]string{"CLASS": "tables-web", "HOSTS": "web.example.com", "ADDRESS": "", "PORTS": "80"}},
		{[]string{"ingressclasses"}, "tables-web", map[string]string{"CONTROLLER": "example.com/ingress", "PARAMETERS": "<none>"}},
		{[]string{"networkpolicies"}, "web", map[string]string{"POD-SELECTOR": "app=web"}},
		{[]string{"poddisruptionbudgets"}, "web", map[string]string{"MIN AVAILABLE": "1", "MAX UNAVAILABLE": "N/A"}},
		{[]string{"priorityclasses"}, "tables-web", map[string]string{"VALUE": "1000", "GLOBAL-DEFAULT": "false"}},
		{[]string{"storageclasses"}, "tables-web", map[string]string{"PROVISIONER": "example.com/local", "RECLAIMPOLICY": "Delete",
			"VOLUMEBINDINGMODE": "Immediate", "ALLOWVOLUMEEXPANSION": "false"}},
		{[]string{"csistoragecapacities"}, "web", map[string]string{"STORAGECLASSNAME": "tables-web", "CAPACITY": "10Gi"}},
		{[]string{"csidrivers"}, "tables-web", map[string]string{"ATTACHREQUIRED": "false", "PODINFOONMOUNT": "false", "STORAGECAPACITY": "false",
			"TOKENREQUESTS": "vault", "REQUIRESREPUBLISH": "false", "MODES": "Persistent,Ephemeral"}},
		{[]string{"csinodes"}, "tables-web", map[string]string{"DRIVERS": "1"}},
		{[]string{"volumeattachments"}, "tables-web", map[string]string{"ATTACHER": "tables-web", "PV": "tables-web", "NODE": "tables-web",
			"ATTACHED": "true"}},
		{[]string{"volumeattributesclasses"}, "tables-web", map[string]string{"DRIVERNAME": "example.com/local"}},
		{[]string{"namespaces"}, "tables", map[string]string{"STATUS": "Active"}},
		{[]string{"rolebindings", "-o", "wide"}, "web", map[string]string{"ROLE": "Role/web", "USERS": "alice", "GROUPS": "devs", "SERVICEACCOUNTS": "tables/default"}},
		{[]string{"clusterrolebindings", "-o", "wide"}, "tables-web", map[string]string{"ROLE": "ClusterRole/tables-web", "USERS": "alice"}},
		{[]string{"nodes"}, "tables-web", map[string]string{"STATUS": "Ready", "ROLES": "worker", "VERSION": "v1.37.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.args[0]+"/"+tt.name, func(t *testing.T) {
			args := tt.args
			if !clusterScoped[args[0]] {
				args = append(args, "-n", ns)
			}
			expectCells(t, get(t, s, args...).row(t, "NAME", tt.name), tt.want)
		})
	}
	t.Run("events", func(t *testing.T) {
		want := map[string]string{"TYPE": "Normal", "REASON": "Pulled", "MESSAGE": "Container image already present on machine"}
		wide := map[string]string{"SUBOBJECT": "spec.containers{web}", "SOURCE": "kubelet, tables-web", "COUNT": "3", "NAME": "web.1"}
		for _, resource := range []string{"events", "events.events.k8s.io"} {
			expectCells(t, get(t, s, resource, "-n", ns).row(t, "OBJECT", "pod/web"), want)
			expectCells(t, get(t, s, resource, "-n", ns, "-o", "wide").row(t, "OBJECT", "pod/web"), wide)
		}
	})
}

// testEmptyList checks that the Table of an empty list still has its
// kind's columns (kubectl prints none for it, so the API is asked directly).
func testEmptyList(t *testing.T, s *framework.Server) {
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, s.URL("/apis/apps/v1/namespaces/empty/deployments"), nil)
	fatalIf(t, err)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	resp, err := s.HTTPClient().Do(req)
	fatalIf(t, err)
	defer resp.Body.Close()
	var tb metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&tb); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, decoding: %v", resp.StatusCode, err)
	}
	var names []string
	for _, c := range tb.ColumnDefinitions {
		names = append(names, strings.ToUpper(c.Name))
	}
	if got := strings.Join(names, " "); got != headers["deployments"].wide || len(tb.Rows) != 0 {
		t.Errorf("empty list: columns %q (want %q), %d rows", got, headers["deployments"].wide, len(tb.Rows))
	}
}

// testWatch checks that `kubectl get pods -w` prints the header and then a
// row per change, with the pod's columns.
func testWatch(t *testing.T, s *framework.Server, cs kubernetes.Interface, ns string) {
	watchCtx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := s.KubectlCommand(watchCtx, "get", "pods", "-n", ns, "-w")
	stdout, err := cmd.StdoutPipe()
	fatalIf(t, err)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	expect := func(fields ...string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		var seen []string
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl get -w ended before %q; saw %q", fields, seen)
				}
				if f := strings.Fields(line); len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
					return
				}
				seen = append(seen, line)
			case <-deadline:
				t.Fatalf("kubectl get -w printed no %q within 30s; saw %q", fields, seen)
			}
		}
	}
	expect(strings.Fields(headers["pods"].std)...)
	expect("web", "1/1", "Running", "0")

	pod, err := cs.CoreV1().Pods(ns).Create(ctx(t), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Spec: corev1.PodSpec{
		NodeName: "tables-web", Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
	}}, metav1.CreateOptions{})
	fatalIf(t, err)
	expect("watched", "0/1", "Pending", "0")
	setPodRunning(pod)
	check(t)(cs.CoreV1().Pods(ns).UpdateStatus(ctx(t), pod, metav1.UpdateOptions{}))
	expect("watched", "1/1", "Running", "0")
	// Deleting a pod on a node makes it Terminating for its grace period.
	if err := cs.CoreV1().Pods(ns).Delete(ctx(t), "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("watched", "1/1", "Terminating", "0")
}

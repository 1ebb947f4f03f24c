package printers_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// meta is the metadata of a test object, created two days ago ("2d").
func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: ago(48 * time.Hour)}
}

func podTemplate(images ...string) corev1.PodTemplateSpec {
	var t corev1.PodTemplateSpec
	for i, image := range images {
		t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: image})
	}
	return t
}

type cellTest struct {
	name string
	obj  runtime.Object
	want map[string]interface{}
}

func runCellTests(t *testing.T, tests []cellTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkCells(t, tt.obj, tt.want) })
	}
}

func TestAppsCells(t *testing.T) {
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	controller := true
	runCellTests(t, []cellTest{
		{"Deployment", &appsv1.Deployment{
			ObjectMeta: meta("web"),
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: selector, Template: podTemplate("nginx:1", "sidecar:2")},
			Status:     appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1},
		}, map[string]interface{}{"Name": "web", "Ready": "2/3", "Up-to-date": int64(3), "Available": int64(1), "Age": "2d",
			"Containers": "c0,c1", "Images": "nginx:1,sidecar:2", "Selector": "app=web"}},
		{"DeploymentNoSelector", &appsv1.Deployment{ObjectMeta: meta("d")},
			map[string]interface{}{"Ready": "0/0", "Containers": "", "Images": ""}},
		{"ReplicaSet", &appsv1.ReplicaSet{
			ObjectMeta: meta("web-abc"),
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: selector, Template: podTemplate("nginx:1")},
			Status:     appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1},
		}, map[string]interface{}{"Desired": int64(2), "Current": int64(2), "Ready": int64(1), "Age": "2d",
			"Containers": "c0", "Images": "nginx:1", "Selector": "app=web"}},
		{"ReplicaSetNoSelector", &appsv1.ReplicaSet{ObjectMeta: meta("rs")},
			map[string]interface{}{"Desired": int64(0), "Selector": "<none>"}},
		{"StatefulSet", &appsv1.StatefulSet{
			ObjectMeta: meta("db"),
			Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Template: podTemplate("postgres:16")},
			Status:     appsv1.StatefulSetStatus{ReadyReplicas: 1},
		}, map[string]interface{}{"Ready": "1/3", "Age": "2d", "Containers": "c0", "Images": "postgres:16"}},
		{"DaemonSet", &appsv1.DaemonSet{
			ObjectMeta: meta("agent"),
			Spec: appsv1.DaemonSetSpec{Selector: selector, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
				Containers:   []corev1.Container{{Name: "agent", Image: "agent:1"}},
			}}},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 1, NumberAvailable: 2},
		}, map[string]interface{}{"Desired": int64(3), "Current": int64(3), "Ready": int64(2), "Up-to-date": int64(1), "Available": int64(2),
			"Node Selector": "kubernetes.io/os=linux", "Age": "2d", "Containers": "agent", "Images": "agent:1", "Selector": "app=web"}},
		{"DaemonSetNoNodeSelector", &appsv1.DaemonSet{ObjectMeta: meta("agent")},
			map[string]interface{}{"Node Selector": "<none>"}},
		{"ControllerRevision", &appsv1.ControllerRevision{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("agent-7d9f")
				m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", Controller: &controller}}
				return m
			}(),
			Revision: 4,
		}, map[string]interface{}{"Controller": "daemonset.apps/agent", "Revision": int64(4), "Age": "2d"}},
		{"ControllerRevisionCore", &appsv1.ControllerRevision{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("x")
				m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", Controller: &controller}}
				return m
			}(),
		}, map[string]interface{}{"Controller": "pod/p"}},
		{"ControllerRevisionOrphan", &appsv1.ControllerRevision{ObjectMeta: meta("x"), Revision: 1},
			map[string]interface{}{"Controller": "<none>", "Revision": int64(1)}},
	})
}

func TestBatchCells(t *testing.T) {
	start := metav1.NewTime(time.Now().Add(-90 * time.Second))
	end := metav1.NewTime(start.Add(30 * time.Second))
	now := metav1.Now()
	cond := func(typ batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue}}
	}
	job := func(mod func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: meta("job"), Spec: batchv1.JobSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u1"}},
			Template: podTemplate("busybox"),
		}}
		mod(j)
		return j
	}
	runCellTests(t, []cellTest{
		{"JobRunning", job(func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](1)
			j.Status.Succeeded, j.Status.StartTime = 1, &start
		}), map[string]interface{}{"Status": "Running", "Completions": "1/3", "Duration": "90s", "Age": "2d",
			"Containers": "c0", "Images": "busybox", "Selector": "batch.kubernetes.io/controller-uid=u1"}},
		{"JobComplete", job(func(j *batchv1.Job) {
			j.Spec.Completions = ptr.To[int32](1)
			j.Status.Succeeded, j.Status.StartTime, j.Status.CompletionTime = 1, &start, &end
			j.Status.Conditions = append(cond(batchv1.JobSuccessCriteriaMet), cond(batchv1.JobComplete)...)
		}), map[string]interface{}{"Status": "Complete", "Completions": "1/1", "Duration": "30s"}},
		{"JobNotStarted", job(func(j *batchv1.Job) {}),
			map[string]interface{}{"Status": "Running", "Completions": "0/1", "Duration": ""}},
		{"JobParallel", job(func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](4) }),
			map[string]interface{}{"Completions": "0/1 of 4"}},
		{"JobFailed", job(func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobFailed) }),
			map[string]interface{}{"Status": "Failed"}},
		{"JobTerminating", job(func(j *batchv1.Job) {
			j.DeletionTimestamp = &now
			j.Status.Conditions = cond(batchv1.JobSuspended)
		}), map[string]interface{}{"Status": "Terminating"}},
		{"JobSuspended", job(func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobSuspended) }),
			map[string]interface{}{"Status": "Suspended"}},
		{"JobFailureTarget", job(func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobFailureTarget) }),
			map[string]interface{}{"Status": "FailureTarget"}},
		{"JobSuccessCriteriaMet", job(func(j *batchv1.Job) { j.Status.Conditions = cond(batchv1.JobSuccessCriteriaMet) }),
			map[string]interface{}{"Status": "SuccessCriteriaMet"}},
		{"JobFalseCondition", job(func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}}
		}), map[string]interface{}{"Status": "Running"}},
		{"CronJob", &batchv1.CronJob{
			ObjectMeta: meta("nightly"),
			Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr.To("Europe/Paris"), Suspend: ptr.To(false),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate("backup:1")}}},
			Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "a"}, {Name: "b"}}, LastScheduleTime: ptr.To(ago(15 * time.Minute))},
		}, map[string]interface{}{"Schedule": "0 3 * * *", "Timezone": "Europe/Paris", "Suspend": "False", "Active": int64(2),
			"Last Schedule": "15m", "Age": "2d", "Containers": "c0", "Images": "backup:1", "Selector": "<none>"}},
		{"CronJobUnset", &batchv1.CronJob{ObjectMeta: meta("c"), Spec: batchv1.CronJobSpec{Schedule: "@hourly"}},
			map[string]interface{}{"Timezone": "<none>", "Suspend": "<unset>", "Active": int64(0), "Last Schedule": "<none>"}},
		{"CronJobSuspended", &batchv1.CronJob{ObjectMeta: meta("c"), Spec: batchv1.CronJobSpec{Suspend: ptr.To(true)}},
			map[string]interface{}{"Suspend": "True"}},
	})
}

func TestServiceCells(t *testing.T) {
	svc := func(typ corev1.ServiceType, mod func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{Type: typ}}
		mod(s)
		return s
	}
	runCellTests(t, []cellTest{
		{"ClusterIP", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10", "fd00::a"}
			s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}}
			s.Spec.Selector = map[string]string{"k8s-app": "kube-dns"}
		}), map[string]interface{}{"Type": "ClusterIP", "Cluster-IP": "10.96.0.10", "External-IP": "<none>",
			"Port(s)": "53/UDP,53/TCP", "Age": "2d", "Selector": "k8s-app=kube-dns"}},
		{"Headless", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"}
		}), map[string]interface{}{"Cluster-IP": "None", "Port(s)": "<none>", "Selector": "<none>"}},
		{"ClusterIPOnly", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.1" }),
			map[string]interface{}{"Cluster-IP": "10.96.0.1"}},
		{"NoClusterIP", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) {}),
			map[string]interface{}{"Cluster-IP": "<none>"}},
		{"ExternalIPs", svc(corev1.ServiceTypeClusterIP, func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"1.2.3.4", "5.6.7.8"} }),
			map[string]interface{}{"External-IP": "1.2.3.4,5.6.7.8"}},
		{"NodePort", svc(corev1.ServiceTypeNodePort, func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}
		}), map[string]interface{}{"Type": "NodePort", "External-IP": "<none>", "Port(s)": "80:30080/TCP"}},
		{"LoadBalancerPending", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {}),
			map[string]interface{}{"External-IP": "<pending>"}},
		{"LoadBalancer", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "9.9.9.9"}, {Hostname: "lb.example.com"}, {IP: "1.1.1.1"}, {IP: "9.9.9.9"}}
		}), map[string]interface{}{"External-IP": "1.1.1.1,9.9.9.9,lb.example.com"}},
		{"LoadBalancerAndExternalIPs", svc(corev1.ServiceTypeLoadBalancer, func(s *corev1.Service) {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "9.9.9.9"}}
			s.Spec.ExternalIPs = []string{"1.2.3.4"}
		}), map[string]interface{}{"External-IP": "9.9.9.9,1.2.3.4"}},
		{"ExternalName", svc(corev1.ServiceTypeExternalName, func(s *corev1.Service) { s.Spec.ExternalName = "db.example.com" }),
			map[string]interface{}{"Type": "ExternalName", "External-IP": "db.example.com"}},
	})
}

func TestCoreCells(t *testing.T) {
	fs := corev1.PersistentVolumeFilesystem
	runCellTests(t, []cellTest{
		{"ConfigMap", &corev1.ConfigMap{ObjectMeta: meta("cm"), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": nil}},
			map[string]interface{}{"Name": "cm", "Data": int64(3), "Age": "2d"}},
		{"Secret", &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}},
			map[string]interface{}{"Type": "Opaque", "Data": int64(1), "Age": "2d"}},
		{"ServiceAccount", &corev1.ServiceAccount{ObjectMeta: meta("default"), Secrets: []corev1.ObjectReference{{Name: "t"}}},
			map[string]interface{}{"Name": "default", "Age": "2d"}},
		{"Namespace", &corev1.Namespace{ObjectMeta: meta("team"), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			map[string]interface{}{"Status": "Active", "Age": "2d"}},
		{"NamespaceTerminating", &corev1.Namespace{ObjectMeta: meta("old"), Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			map[string]interface{}{"Status": "Terminating"}},
		{"ResourceQuota", &corev1.ResourceQuota{ObjectMeta: meta("q"), Status: corev1.ResourceQuotaStatus{
			Hard: corev1.ResourceList{"requests.cpu": resource.MustParse("2"), "pods": resource.MustParse("10"), "limits.memory": resource.MustParse("4Gi"), "limits.cpu": resource.MustParse("4")},
			Used: corev1.ResourceList{"requests.cpu": resource.MustParse("500m"), "pods": resource.MustParse("3"), "limits.cpu": resource.MustParse("1")},
		}}, map[string]interface{}{"Request": "pods: 3/10, requests.cpu: 500m/2", "Limit": "limits.cpu: 1/4, limits.memory: 0/4Gi", "Age": "2d"}},
		{"PersistentVolume", &corev1.PersistentVolume{
			ObjectMeta: meta("pv1"),
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				ClaimRef:                      &corev1.ObjectReference{Namespace: "ns", Name: "data"},
				StorageClassName:              "fast",
				VolumeMode:                    &fs,
			},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
		}, map[string]interface{}{"Capacity": "10Gi", "Access Modes": "RWO,RWX", "Reclaim Policy": "Retain", "Status": "Bound",
			"Claim": "ns/data", "StorageClass": "fast", "VolumeAttributesClass": "<unset>", "Reason": "", "Age": "2d", "VolumeMode": "Filesystem"}},
		{"PersistentVolumeTerminating", &corev1.PersistentVolume{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("pv2")
				m.DeletionTimestamp = ptr.To(metav1.Now())
				m.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "legacy"}
				return m
			}(),
			Spec:   corev1.PersistentVolumeSpec{StorageClassName: "fast", VolumeAttributesClassName: ptr.To("gold")},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased, Reason: "Lost"},
		}, map[string]interface{}{"Capacity": "0", "Access Modes": "", "Status": "Terminating", "Claim": "", "StorageClass": "legacy",
			"VolumeAttributesClass": "gold", "Reason": "Lost", "VolumeMode": "<unset>"}},
		{"PersistentVolumeClaimBound", &corev1.PersistentVolumeClaim{
			ObjectMeta: meta("data"),
			Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv1", StorageClassName: ptr.To("fast"), VolumeMode: &fs,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany},
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		}, map[string]interface{}{"Status": "Bound", "Volume": "pv1", "Capacity": "10Gi", "Access Modes": "ROX,RWOP",
			"StorageClass": "fast", "VolumeAttributesClass": "<unset>", "Age": "2d", "VolumeMode": "Filesystem"}},
		{"PersistentVolumeClaimPending", &corev1.PersistentVolumeClaim{
			ObjectMeta: meta("data"),
			Spec:       corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
		}, map[string]interface{}{"Status": "Pending", "Volume": "", "Capacity": "", "Access Modes": "", "StorageClass": "", "VolumeMode": "<unset>"}},
		{"Status", &metav1.Status{Status: metav1.StatusSuccess, Reason: "Gone", Message: "deleted"},
			map[string]interface{}{"Status": "Success", "Reason": "Gone", "Message": "deleted"}},
	})
}

func TestNodeCells(t *testing.T) {
	node := func(mod func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: meta("node-1")}
		n.Namespace = ""
		mod(n)
		return n
	}
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: s}}
	}
	runCellTests(t, []cellTest{
		{"Ready", node(func(n *corev1.Node) {
			n.Labels = map[string]string{"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "worker", "node-role.kubernetes.io/": ""}
			n.Status.Conditions = ready(corev1.ConditionTrue)
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "node-1"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeInternalIP, Address: "192.168.1.11"}}
			n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OSImage: "Debian GNU/Linux 13", KernelVersion: "6.12.0", ContainerRuntimeVersion: "containerd://2.1.0"}
		}), map[string]interface{}{"Name": "node-1", "Status": "Ready", "Roles": "control-plane,worker", "Age": "2d", "Version": "v1.37.2",
			"Internal-IP": "192.168.1.10", "External-IP": "<none>", "OS-Image": "Debian GNU/Linux 13", "Kernel-Version": "6.12.0", "Container-Runtime": "containerd://2.1.0"}},
		{"NotReadyCordoned", node(func(n *corev1.Node) {
			n.Status.Conditions = ready(corev1.ConditionUnknown)
			n.Spec.Unschedulable = true
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.5"}}
		}), map[string]interface{}{"Status": "NotReady,SchedulingDisabled", "Roles": "<none>", "Internal-IP": "<none>", "External-IP": "203.0.113.5"}},
		{"NoConditions", node(func(n *corev1.Node) {}),
			map[string]interface{}{"Status": "Unknown", "Version": "", "OS-Image": "<unknown>", "Kernel-Version": "<unknown>", "Container-Runtime": "<unknown>"}},
	})
}

func TestEventCells(t *testing.T) {
	want := map[string]interface{}{
		"Last Seen": "15m", "Type": "Warning", "Reason": "BackOff", "Object": "pod/web-1", "Subobject": "spec.containers{web}",
		"Source": "kubelet, node-1", "Message": "Back-off restarting failed container", "First Seen": "2d", "Count": int64(7), "Name": "web-1.17f",
	}
	core := &corev1.Event{
		ObjectMeta:     meta("web-1.17f"),
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{web}"},
		Reason:         "BackOff", Message: "  Back-off restarting failed container\n", Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: ago(48 * time.Hour), LastTimestamp: ago(15 * time.Minute), Count: 7,
	}
	events := &eventsv1.Event{
		ObjectMeta: meta("web-1.17f"),
		Regarding:  core.InvolvedObject, Reason: core.Reason, Note: core.Message, Type: core.Type,
		DeprecatedSource: core.Source, DeprecatedFirstTimestamp: core.FirstTimestamp, DeprecatedLastTimestamp: core.LastTimestamp, DeprecatedCount: 7,
	}
	series := &eventsv1.Event{
		ObjectMeta:          meta("n.1"),
		Regarding:           corev1.ObjectReference{Kind: "Node"},
		EventTime:           metav1.NewMicroTime(time.Now().Add(-48 * time.Hour)),
		Series:              &eventsv1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(time.Now().Add(-15 * time.Minute))},
		ReportingController: "example.com/controller", ReportingInstance: "controller-0",
	}
	runCellTests(t, []cellTest{
		{"Core", core, want},
		{"EventsAPI", events, want},
		{"Series", series, map[string]interface{}{"Last Seen": "15m", "First Seen": "2d", "Count": int64(4), "Object": "node",
			"Source": "example.com/controller, controller-0"}},
		{"Singleton", &corev1.Event{ObjectMeta: meta("e"), EventTime: metav1.NewMicroTime(time.Now().Add(-15 * time.Minute)), ReportingController: "c"},
			map[string]interface{}{"Last Seen": "15m", "First Seen": "15m", "Count": int64(1), "Source": "c"}},
		{"NoTimes", &corev1.Event{ObjectMeta: meta("e")},
			map[string]interface{}{"Last Seen": "<unknown>", "First Seen": "<unknown>", "Object": ""}},
	})
}

func TestNetworkingCells(t *testing.T) {
	port := func(p int32) *int32 { return &p }
	runCellTests(t, []cellTest{
		{"EndpointSlice", &discoveryv1.EndpointSlice{
			ObjectMeta:  meta("web-x1"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: port(80)}, {Name: ptr.To("metrics")}, {}, {Port: port(9000)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1", "10.0.0.2"}}, {Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}},
			},
		}, map[string]interface{}{"AddressType": "IPv4", "Ports": "80,metrics,* + 1 more...",
			"Endpoints": "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "Age": "2d"}},
		{"EndpointSliceEmpty", &discoveryv1.EndpointSlice{ObjectMeta: meta("e"), AddressType: discoveryv1.AddressTypeIPv6},
			map[string]interface{}{"Ports": "<unset>", "Endpoints": "<unset>"}},
		{"Ingress", &networkingv1.Ingress{
			ObjectMeta: meta("web"),
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"),
				Rules: []networkingv1.IngressRule{{Host: "a.example.com"}, {}, {Host: "b.example.com"}},
				TLS:   []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}}},
			Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
				{Hostname: "lb.example.com"}, {IP: "203.0.113.10"},
			}}},
		}, map[string]interface{}{"Class": "nginx", "Hosts": "a.example.com,b.example.com", "Address": "203.0.113.10,lb.example.com",
			"Ports": "80, 443", "Age": "2d"}},
		{"IngressDefaults", &networkingv1.Ingress{ObjectMeta: meta("web")},
			map[string]interface{}{"Class": "<none>", "Hosts": "*", "Address": "", "Ports": "80"}},
		{"IngressManyHosts", &networkingv1.Ingress{ObjectMeta: meta("web"), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			{Host: "a"}, {Host: "b"}, {}, {Host: "c"}, {Host: "d"}, {Host: "e"},
		}}}, map[string]interface{}{"Hosts": "a,b,c + 3 more..."}},
		{"IngressClass", &networkingv1.IngressClass{
			ObjectMeta: meta("nginx"),
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx", Parameters: &networkingv1.IngressClassParametersReference{
				APIGroup: ptr.To("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}},
		}, map[string]interface{}{"Controller": "k8s.io/ingress-nginx", "Parameters": "IngressParameters.k8s.example.com/external-lb", "Age": "2d"}},
		{"IngressClassNoParameters", &networkingv1.IngressClass{ObjectMeta: meta("c"), Spec: networkingv1.IngressClassSpec{Controller: "x"}},
			map[string]interface{}{"Parameters": "<none>"}},
		{"NetworkPolicy", &networkingv1.NetworkPolicy{ObjectMeta: meta("deny"), Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}}},
			map[string]interface{}{"Pod-Selector": "role=db", "Age": "2d"}},
		{"NetworkPolicyAllPods", &networkingv1.NetworkPolicy{ObjectMeta: meta("deny")},
			map[string]interface{}{"Pod-Selector": "<none>"}},
	})
}

func TestOtherGroupsCells(t *testing.T) {
	utilisation := func(v int32) *int32 { return &v }
	cpu := resource.MustParse("500m")
	runCellTests(t, []cellTest{
		{"HPA", &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: meta("web"),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
				MinReplicas:    ptr.To[int32](2), MaxReplicas: 10,
				Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: utilisation(80)}}}},
			},
			Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, CurrentMetrics: []autoscalingv2.MetricStatus{{
				Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
					Current: autoscalingv2.MetricValueStatus{AverageUtilization: utilisation(42)}}}}},
		}, map[string]interface{}{"Reference": "Deployment/web", "Targets": "cpu: 42%/80%", "MinPods": "2", "MaxPods": int64(10), "Replicas": int64(3), "Age": "2d"}},
		{"HPAManyMetrics", &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: meta("web"),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{AverageValue: &cpu}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Target: autoscalingv2.MetricTarget{AverageValue: &cpu}}},
				{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Target: autoscalingv2.MetricTarget{Value: &cpu}}},
			}},
		}, map[string]interface{}{"Targets": "memory: <unknown>/500m, <unknown>/500m + 1 more...", "MinPods": "<unset>"}},
		{"HPAUnknownMetrics", &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: meta("web"),
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ContainerResourceMetricSourceType, ContainerResource: &autoscalingv2.ContainerResourceMetricSource{
					Name: corev1.ResourceCPU, Container: "app", Target: autoscalingv2.MetricTarget{}}},
				{Type: "Other"},
			}},
		}, map[string]interface{}{"Targets": "cpu: <unknown>/<auto>, <unknown type>"}},
		{"HPANoMetrics", &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("web")},
			map[string]interface{}{"Targets": "<none>"}},
		{"Scale", &autoscalingv1.Scale{ObjectMeta: meta("web"), Spec: autoscalingv1.ScaleSpec{Replicas: 3}, Status: autoscalingv1.ScaleStatus{Replicas: 2}},
			map[string]interface{}{"Name": "web", "Desired": int64(3), "Available": int64(2), "Age": "2d"}},
		{"Lease", &coordinationv1.Lease{ObjectMeta: meta("kube-scheduler"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("node-1_abc")}},
			map[string]interface{}{"Holder": "node-1_abc", "Age": "2d"}},
		{"LeaseFree", &coordinationv1.Lease{ObjectMeta: meta("l")}, map[string]interface{}{"Holder": ""}},
		{"PDBMinAvailable", &policyv1.PodDisruptionBudget{ObjectMeta: meta("web"),
			Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("50%"))},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}},
			map[string]interface{}{"Min Available": "50%", "Max Unavailable": "N/A", "Allowed Disruptions": int64(1), "Age": "2d"}},
		{"PDBMaxUnavailable", &policyv1.PodDisruptionBudget{ObjectMeta: meta("web"),
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
			map[string]interface{}{"Min Available": "N/A", "Max Unavailable": "1"}},
		{"PriorityClass", &schedulingv1.PriorityClass{ObjectMeta: meta("high"), Value: 1000000, GlobalDefault: true,
			PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority)},
			map[string]interface{}{"Value": int64(1000000), "Global-Default": true, "Age": "2d", "PreemptionPolicy": "PreemptLowerPriority"}},
		{"PriorityClassNoPolicy", &schedulingv1.PriorityClass{ObjectMeta: meta("low")},
			map[string]interface{}{"Global-Default": false, "PreemptionPolicy": ""}},
		{"StorageClassDefault", &storagev1.StorageClass{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("standard")
				m.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
				return m
			}(),
			Provisioner: "rancher.io/local-path", ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimRetain),
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer), AllowVolumeExpansion: ptr.To(true),
		}, map[string]interface{}{"Name": "standard (default)", "Provisioner": "rancher.io/local-path", "ReclaimPolicy": "Retain",
			"VolumeBindingMode": "WaitForFirstConsumer", "AllowVolumeExpansion": true, "Age": "2d"}},
		{"StorageClassBetaDefault", &storagev1.StorageClass{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("old")
				m.Annotations = map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}
				return m
			}(),
		}, map[string]interface{}{"Name": "old (default)", "ReclaimPolicy": "Delete", "VolumeBindingMode": "Immediate", "AllowVolumeExpansion": false}},
		{"StorageClassNotDefault", &storagev1.StorageClass{
			ObjectMeta: func() metav1.ObjectMeta {
				m := meta("slow")
				m.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "false"}
				return m
			}(),
		}, map[string]interface{}{"Name": "slow"}},
		{"CSIStorageCapacity", &storagev1.CSIStorageCapacity{ObjectMeta: meta("havre-local-n1"), StorageClassName: "local",
			Capacity: ptr.To(resource.MustParse("10Gi"))},
			map[string]interface{}{"Name": "havre-local-n1", "StorageClassName": "local", "Capacity": "10Gi"}},
		{"CSIStorageCapacityUnset", &storagev1.CSIStorageCapacity{ObjectMeta: meta("havre-local-n2"), StorageClassName: "local"},
			map[string]interface{}{"Capacity": "<unset>"}},
		{"CSIDriver", &storagev1.CSIDriver{ObjectMeta: meta("csi.example.com"), Spec: storagev1.CSIDriverSpec{
			AttachRequired: ptr.To(false), PodInfoOnMount: ptr.To(true), StorageCapacity: ptr.To(true), RequiresRepublish: ptr.To(true),
			TokenRequests:        []storagev1.TokenRequest{{Audience: "vault"}, {Audience: "gcp"}},
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}}},
			map[string]interface{}{"Name": "csi.example.com", "AttachRequired": false, "PodInfoOnMount": true, "StorageCapacity": true,
				"TokenRequests": "vault,gcp", "RequiresRepublish": true, "Modes": "Persistent,Ephemeral", "Age": "2d"}},
		{"CSIDriverUnset", &storagev1.CSIDriver{ObjectMeta: meta("bare.example.com")},
			map[string]interface{}{"AttachRequired": true, "PodInfoOnMount": false, "StorageCapacity": false,
				"TokenRequests": "<unset>", "RequiresRepublish": false, "Modes": "<none>"}},
		{"CSINode", &storagev1.CSINode{ObjectMeta: meta("n1"), Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
			{Name: "a.example.com", NodeID: "n1"}, {Name: "b.example.com", NodeID: "n1"}}}},
			map[string]interface{}{"Name": "n1", "Drivers": int64(2), "Age": "2d"}},
		{"VolumeAttachment", &storagev1.VolumeAttachment{ObjectMeta: meta("csi-123"), Spec: storagev1.VolumeAttachmentSpec{
			Attacher: "csi.example.com", NodeName: "n1", Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("pv-1")}},
			Status: storagev1.VolumeAttachmentStatus{Attached: true}},
			map[string]interface{}{"Name": "csi-123", "Attacher": "csi.example.com", "PV": "pv-1", "Node": "n1", "Attached": true, "Age": "2d"}},
		{"VolumeAttachmentInline", &storagev1.VolumeAttachment{ObjectMeta: meta("csi-456"), Spec: storagev1.VolumeAttachmentSpec{
			Attacher: "csi.example.com", NodeName: "n1", Source: storagev1.VolumeAttachmentSource{InlineVolumeSpec: &corev1.PersistentVolumeSpec{}}}},
			map[string]interface{}{"PV": "", "Attached": false}},
		{"VolumeAttributesClass", &storagev1.VolumeAttributesClass{ObjectMeta: meta("gold"), DriverName: "csi.example.com"},
			map[string]interface{}{"Name": "gold", "DriverName": "csi.example.com", "Age": "2d"}},
	})
}

func TestRBACCells(t *testing.T) {
	created := meta("r")
	subjects := []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "User", Name: "bob"}, {Kind: "Group", Name: "devs"},
		{Kind: "ServiceAccount", Namespace: "ns", Name: "sa"}}
	runCellTests(t, []cellTest{
		{"role", &rbacv1.Role{ObjectMeta: created},
			map[string]interface{}{"Name": "r", "Created At": created.CreationTimestamp.UTC().Format(time.RFC3339)}},
		{"cluster role", &rbacv1.ClusterRole{ObjectMeta: created},
			map[string]interface{}{"Name": "r", "Created At": created.CreationTimestamp.UTC().Format(time.RFC3339)}},
		{"role binding", &rbacv1.RoleBinding{ObjectMeta: created, RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"}, Subjects: subjects},
			map[string]interface{}{"Role": "Role/reader", "Age": "2d", "Users": "alice, bob", "Groups": "devs", "ServiceAccounts": "ns/sa"}},
		{"cluster role binding", &rbacv1.ClusterRoleBinding{ObjectMeta: created, RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}},
			map[string]interface{}{"Role": "ClusterRole/view", "Users": "", "Groups": "", "ServiceAccounts": ""}},
	})
}

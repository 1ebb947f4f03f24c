package api_test

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

// TestTypedClient drives the API with client-go's typed clientset, which
// sends protobuf bodies and asks for protobuf answers.
func TestTypedClient(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, kubernetes.Interface)
	}{
		{"DefaultNamespaces", testDefaultNamespaces},
		{"ConfigMapCRUD", testConfigMapCRUD},
		{"SecretCRUD", testSecretCRUD},
		{"PodCRUD", testPodCRUD},
		{"PodBinding", testPodBinding},
		{"ServiceCRUD", testServiceCRUD},
		{"DeploymentCRUD", testDeploymentCRUD},
		{"GenerateName", testGenerateName},
		{"Conflict", testConflict},
		{"AlreadyExists", testAlreadyExists},
		{"NotFound", testNotFound},
		{"StatusSubresource", testStatusSubresource},
		{"Generation", testGeneration},
		{"Finalizers", testFinalizers},
		{"DeletePreconditions", testDeletePreconditions},
		{"LabelSelectors", testLabelSelectors},
		{"FieldSelectors", testFieldSelectors},
		{"Pagination", testPagination},
		{"ListAtExactResourceVersion", testListExactResourceVersion},
		{"DeleteCollection", testDeleteCollection},
		{"NamespaceDeletion", testNamespaceDeletion},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cs) })
	}
}

func testDefaultNamespaces(t *testing.T, cs kubernetes.Interface) {
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		ns, err := cs.CoreV1().Namespaces().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("namespace %s: %v", name, err)
			continue
		}
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Errorf("namespace %s has phase %q, want Active", name, ns.Status.Phase)
		}
		if ns.UID == "" || ns.ResourceVersion == "" || ns.CreationTimestamp.IsZero() {
			t.Errorf("namespace %s lacks server-set metadata: %+v", name, ns.ObjectMeta)
		}
	}
}

// checkServerMetadata checks the metadata every stored object gets.
func checkServerMetadata(t *testing.T, m metav1.ObjectMeta, ns string) {
	t.Helper()
	if m.UID == "" {
		t.Errorf("%s: no uid", m.Name)
	}
	if m.ResourceVersion == "" {
		t.Errorf("%s: no resourceVersion", m.Name)
	}
	if m.CreationTimestamp.IsZero() {
		t.Errorf("%s: no creationTimestamp", m.Name)
	} else if d := time.Since(m.CreationTimestamp.Time); d > time.Hour || d < -time.Hour {
		t.Errorf("%s: creationTimestamp %v is far from now", m.Name, m.CreationTimestamp)
	}
	if m.Namespace != ns {
		t.Errorf("%s: namespace %q, want %q", m.Name, m.Namespace, ns)
	}
}

func testConfigMapCRUD(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	created, err := api.Create(ctx(t), configMap("crud", map[string]string{"a": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkServerMetadata(t, created.ObjectMeta, ns)

	got, err := api.Get(ctx(t), "crud", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion || got.Data["a"] != "1" {
		t.Fatalf("get returned %+v, want what create returned %+v", got, created)
	}

	got.Data = map[string]string{"a": "2", "b": "3"}
	updated, err := api.Update(ctx(t), got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.ResourceVersion == created.ResourceVersion {
		t.Errorf("update kept resourceVersion %s", updated.ResourceVersion)
	}
	if updated.UID != created.UID || !updated.CreationTimestamp.Equal(&created.CreationTimestamp) {
		t.Errorf("update changed uid or creationTimestamp")
	}
	got, err = api.Get(ctx(t), "crud", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "2" || got.Data["b"] != "3" || got.ResourceVersion != updated.ResourceVersion {
		t.Fatalf("after update get returned %+v", got)
	}

	list, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if names := configMapNames(list.Items); !slices.Contains(names, "crud") {
		t.Fatalf("list returned %v, want crud among them", names)
	}
	if list.ResourceVersion == "" {
		t.Error("list has no resourceVersion")
	}

	if err := api.Delete(ctx(t), "crud", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Get(ctx(t), "crud", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

func testSecretCRUD(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().Secrets(ns)
	created, err := api.Create(ctx(t), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Data:       map[string][]byte{"bin": {0, 1, 2, 255}},
		StringData: map[string]string{"plain": "text"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkServerMetadata(t, created.ObjectMeta, ns)
	got, err := api.Get(ctx(t), "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// stringData is write-only: it is merged into data.
	if string(got.Data["bin"]) != "\x00\x01\x02\xff" || string(got.Data["plain"]) != "text" || len(got.StringData) != 0 {
		t.Errorf("secret data %q stringData %q", got.Data, got.StringData)
	}
	if got.Type != corev1.SecretTypeOpaque {
		t.Errorf("type %q, want the default Opaque", got.Type)
	}
	got.Data["plain"] = []byte("changed")
	if _, err := api.Update(ctx(t), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err = api.Get(ctx(t), "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["plain"]) != "changed" {
		t.Errorf("after update data %q", got.Data)
	}
	list, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "s" {
		t.Errorf("list returned %d secrets", len(list.Items))
	}
	if err := api.Delete(ctx(t), "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Get(ctx(t), "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

func pod(name, nodeName string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:   nodeName,
			Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1.0"}},
		},
	}
}

// testPodBinding binds a pod through pods/binding as a scheduler does: the
// pod gets its node and PodScheduled, loses its nomination, keeps its
// managedFields as they were (kube-apiserver's binding writes the pod
// directly), and a second binding, a stale UID or a missing target is
// refused as upstream refuses them.
func testPodBinding(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().Pods(ns)
	created, err := api.Create(ctx(t), pod("b", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A nomination, as preemption leaves one, is cleared by the binding.
	created.Status.NominatedNodeName = "n1"
	if created, err = api.UpdateStatus(ctx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(uid types.UID, node string) error {
		return api.Bind(ctx(t), &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b", UID: uid},
			Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{FieldManager: "binder"})
	}
	expectStatus(t, bind("", ""), http.StatusUnprocessableEntity, metav1.StatusReasonInvalid)
	expectStatus(t, bind("not-the-uid", "n1"), http.StatusConflict, metav1.StatusReasonConflict)
	if err := bind(created.UID, "n1"); err != nil {
		t.Fatal(err)
	}
	got, err := api.Get(ctx(t), "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "n1" || got.Status.NominatedNodeName != "" {
		t.Errorf("nodeName %q, nominatedNodeName %q after binding, want n1 and none", got.Spec.NodeName, got.Status.NominatedNodeName)
	}
	scheduled := false
	for _, c := range got.Status.Conditions {
		scheduled = scheduled || c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue
	}
	if !scheduled {
		t.Errorf("no PodScheduled=True condition after binding: %+v", got.Status.Conditions)
	}
	if !equality.Semantic.DeepEqual(got.ManagedFields, created.ManagedFields) {
		t.Errorf("binding changed managedFields:\n%+v\nwas:\n%+v", got.ManagedFields, created.ManagedFields)
	}
	st := expectStatus(t, bind(created.UID, "n2"), http.StatusConflict, metav1.StatusReasonConflict)
	if !strings.Contains(st.Message, `is already assigned to node "n1"`) {
		t.Errorf("second binding: %q", st.Message)
	}
}

func testPodCRUD(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().Pods(ns)
	// No nodeName: an unscheduled pod is deleted at once (no kubelet has
	// to confirm), and with --disable-agent no node can take it.
	created, err := api.Create(ctx(t), pod("p", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkServerMetadata(t, created.ObjectMeta, ns)
	// A few of upstream's defaults and the initial status.
	if created.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("restartPolicy %q, want Always", created.Spec.RestartPolicy)
	}
	if created.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("dnsPolicy %q, want ClusterFirst", created.Spec.DNSPolicy)
	}
	if p := created.Spec.Containers[0].ImagePullPolicy; p != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy %q, want IfNotPresent for a tagged image", p)
	}
	if created.Status.Phase != corev1.PodPending {
		t.Errorf("status.phase %q, want Pending", created.Status.Phase)
	}

	created.Spec.Containers[0].Image = "registry.example/app:2.0"
	updated, err := api.Update(ctx(t), created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Spec.Containers[0].Image != "registry.example/app:2.0" {
		t.Errorf("image after update: %q", updated.Spec.Containers[0].Image)
	}
	list, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "p" {
		t.Errorf("list returned %d pods", len(list.Items))
	}
	if err := api.Delete(ctx(t), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() (bool, error) {
		_, err := api.Get(ctx(t), "p", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "unscheduled pod still exists after delete")
}

func testServiceCRUD(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().Services(ns)
	created, err := api.Create(ctx(t), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "x"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkServerMetadata(t, created.ObjectMeta, ns)
	if created.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("type %q, want the default ClusterIP", created.Spec.Type)
	}
	if net.ParseIP(created.Spec.ClusterIP) == nil {
		t.Errorf("clusterIP %q was not allocated", created.Spec.ClusterIP)
	}
	p := created.Spec.Ports[0]
	if p.Protocol != corev1.ProtocolTCP || p.TargetPort != intstr.FromInt32(80) {
		t.Errorf("port defaults: protocol %q targetPort %v, want TCP and 80", p.Protocol, p.TargetPort)
	}

	created.Spec.Ports = append(created.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP})
	updated, err := api.Update(ctx(t), created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(updated.Spec.Ports) != 2 || updated.Spec.ClusterIP != created.Spec.ClusterIP {
		t.Errorf("after update ports %v clusterIP %q", updated.Spec.Ports, updated.Spec.ClusterIP)
	}
	list, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Errorf("list returned %d services", len(list.Items))
	}
	if err := api.Delete(ctx(t), "svc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Get(ctx(t), "svc", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

func deployment(name string, replicas *int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "main", Image: "registry.example/app:1.0"},
				}},
			},
		},
	}
}

func testDeploymentCRUD(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.AppsV1().Deployments(ns)
	created, err := api.Create(ctx(t), deployment("d", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkServerMetadata(t, created.ObjectMeta, ns)
	if created.Spec.Replicas == nil || *created.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want the default 1", created.Spec.Replicas)
	}
	if created.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("strategy %q, want the default RollingUpdate", created.Spec.Strategy.Type)
	}
	if created.Generation != 1 {
		t.Errorf("generation %d, want 1", created.Generation)
	}
	created.Spec.Replicas = ptr.To[int32](3)
	updated, err := api.Update(ctx(t), created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *updated.Spec.Replicas != 3 {
		t.Errorf("replicas after update %d", *updated.Spec.Replicas)
	}
	list, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "d" {
		t.Errorf("list returned %d deployments", len(list.Items))
	}
	if err := api.Delete(ctx(t), "d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Get(ctx(t), "d", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want NotFound", err)
	}
}

func testGenerateName(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	seen := map[string]bool{}
	for range 5 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}
		out, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), cm, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.Name, "gen-") || len(out.Name) <= len("gen-") {
			t.Errorf("generated name %q does not extend the prefix", out.Name)
		}
		if out.GenerateName != "gen-" {
			t.Errorf("generateName %q not kept", out.GenerateName)
		}
		if seen[out.Name] {
			t.Errorf("name %q generated twice", out.Name)
		}
		seen[out.Name] = true
	}
}

func testConflict(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	stale := mustCreateConfigMap(t, cs, ns, configMap("c", map[string]string{"v": "0"}))
	fresh := stale.DeepCopy()
	fresh.Data["v"] = "1"
	if _, err := api.Update(ctx(t), fresh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale.Data["v"] = "2"
	_, err := api.Update(ctx(t), stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("update with a stale resourceVersion: %v, want Conflict", err)
	}
	expectStatus(t, err, 409, metav1.StatusReasonConflict)
	got, err := api.Get(ctx(t), "c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["v"] != "1" {
		t.Errorf("the conflicting update was applied: %v", got.Data)
	}
}

func testAlreadyExists(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	mustCreateConfigMap(t, cs, ns, configMap("dup", nil))
	_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), configMap("dup", nil), metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	st := expectStatus(t, err, 409, metav1.StatusReasonAlreadyExists)
	if st.Details == nil || st.Details.Name != "dup" || st.Details.Kind != "configmaps" {
		t.Errorf("details %+v, want name dup kind configmaps", st.Details)
	}
}

func testNotFound(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	_, err := api.Get(ctx(t), "missing", metav1.GetOptions{})
	st := expectStatus(t, err, 404, metav1.StatusReasonNotFound)
	if st.Details == nil || st.Details.Name != "missing" || st.Details.Kind != "configmaps" {
		t.Errorf("details %+v, want name missing kind configmaps", st.Details)
	}
	if err := api.Delete(ctx(t), "missing", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("delete of a missing object: %v, want NotFound", err)
	}
	if _, err := api.Update(ctx(t), configMap("missing", nil), metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("update of a missing object: %v, want NotFound", err)
	}
	// Creating in a namespace that does not exist is refused too.
	_, err = cs.CoreV1().ConfigMaps("no-such-namespace").Create(ctx(t), configMap("x", nil), metav1.CreateOptions{})
	expectStatus(t, err, 404, metav1.StatusReasonNotFound)
}

func testStatusSubresource(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.AppsV1().Deployments(ns)
	d, err := api.Create(ctx(t), deployment("st", ptr.To[int32](1)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// UpdateStatus changes status only: the spec change is dropped.
	d.Status.Replicas = 5
	d.Status.ObservedGeneration = d.Generation
	d.Spec.Replicas = ptr.To[int32](7)
	d.Labels = map[string]string{"via": "status"}
	afterStatus, err := api.UpdateStatus(ctx(t), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if afterStatus.Status.Replicas != 5 || afterStatus.Status.ObservedGeneration != 1 {
		t.Errorf("status after UpdateStatus: %+v", afterStatus.Status)
	}
	if *afterStatus.Spec.Replicas != 1 {
		t.Errorf("UpdateStatus changed spec.replicas to %d", *afterStatus.Spec.Replicas)
	}
	if afterStatus.Labels["via"] != "" {
		t.Errorf("UpdateStatus changed labels: %v", afterStatus.Labels)
	}
	if afterStatus.Generation != 1 {
		t.Errorf("UpdateStatus bumped generation to %d", afterStatus.Generation)
	}

	// Update changes spec only: the status change is dropped.
	afterStatus.Status.Replicas = 99
	afterStatus.Spec.Replicas = ptr.To[int32](2)
	afterUpdate, err := api.Update(ctx(t), afterStatus, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if afterUpdate.Status.Replicas != 5 {
		t.Errorf("Update changed status.replicas to %d", afterUpdate.Status.Replicas)
	}
	if *afterUpdate.Spec.Replicas != 2 {
		t.Errorf("spec.replicas after Update: %d", *afterUpdate.Spec.Replicas)
	}
	got, err := api.Get(ctx(t), "st", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Replicas != 5 || *got.Spec.Replicas != 2 {
		t.Errorf("stored object: status.replicas %d spec.replicas %d, want 5 and 2", got.Status.Replicas, *got.Spec.Replicas)
	}
}

func testGeneration(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.AppsV1().Deployments(ns)
	d, err := api.Create(ctx(t), deployment("gen", ptr.To[int32](1)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		what   string
		mutate func(*appsv1.Deployment)
		status bool
		want   int64
	}{
		{"metadata-only update", func(d *appsv1.Deployment) { d.Labels = map[string]string{"x": "y"} }, false, 1},
		{"spec change", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](4) }, false, 2},
		{"identical update", func(*appsv1.Deployment) {}, false, 2},
		{"status update", func(d *appsv1.Deployment) { d.Status.Replicas = 4 }, true, 2},
		{"template change", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "registry.example/app:2.0" }, false, 3},
	}
	if d.Generation != 1 {
		t.Fatalf("generation after create %d, want 1", d.Generation)
	}
	for _, step := range steps {
		step.mutate(d)
		if step.status {
			d, err = api.UpdateStatus(ctx(t), d, metav1.UpdateOptions{})
		} else {
			d, err = api.Update(ctx(t), d, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if d.Generation != step.want {
			t.Errorf("after %s generation is %d, want %d", step.what, d.Generation, step.want)
		}
	}
}

func testFinalizers(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	cm := configMap("held", nil)
	cm.Finalizers = []string{"e2e.havre.dev/hold"}
	mustCreateConfigMap(t, cs, ns, cm)

	if err := api.Delete(ctx(t), "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := api.Get(ctx(t), "held", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("object with a finalizer vanished on delete: %v", err)
	}
	if got.DeletionTimestamp == nil {
		t.Fatal("delete did not set deletionTimestamp")
	}
	if !slices.Equal(got.Finalizers, []string{"e2e.havre.dev/hold"}) {
		t.Errorf("finalizers %v changed by delete", got.Finalizers)
	}

	// No finalizer may be added once deletion started.
	adding := got.DeepCopy()
	adding.Finalizers = append(adding.Finalizers, "e2e.havre.dev/another")
	_, err = api.Update(ctx(t), adding, metav1.UpdateOptions{})
	expectStatus(t, err, 422, metav1.StatusReasonInvalid)

	// A second delete leaves it as it is.
	if err := api.Delete(ctx(t), "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Get(ctx(t), "held", metav1.GetOptions{}); err != nil {
		t.Fatalf("object with a finalizer vanished on the second delete: %v", err)
	}

	// Removing the last finalizer completes the deletion.
	got.Finalizers = nil
	if _, err := api.Update(ctx(t), got, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	framework.Eventually(t, 10*time.Second, func() (bool, error) {
		_, err := api.Get(ctx(t), "held", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "object still exists after its last finalizer was removed")
}

func testDeletePreconditions(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	cm := mustCreateConfigMap(t, cs, ns, configMap("pre", nil))
	for _, tc := range []struct {
		name string
		pre  metav1.Preconditions
	}{
		{"wrong uid", metav1.Preconditions{UID: ptr.To(types.UID("00000000-0000-0000-0000-000000000000"))}},
		{"wrong resourceVersion", metav1.Preconditions{ResourceVersion: ptr.To("1")}},
		{"right uid, wrong resourceVersion", metav1.Preconditions{UID: &cm.UID, ResourceVersion: ptr.To("1")}},
	} {
		err := api.Delete(ctx(t), "pre", metav1.DeleteOptions{Preconditions: &tc.pre})
		if !apierrors.IsConflict(err) {
			t.Errorf("%s: %v, want Conflict", tc.name, err)
			continue
		}
		expectStatus(t, err, 409, metav1.StatusReasonConflict)
	}
	if _, err := api.Get(ctx(t), "pre", metav1.GetOptions{}); err != nil {
		t.Fatalf("object gone after failed preconditions: %v", err)
	}
	err := api.Delete(ctx(t), "pre", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cm.UID, ResourceVersion: &cm.ResourceVersion}})
	if err != nil {
		t.Fatalf("delete with matching preconditions: %v", err)
	}
}

func testLabelSelectors(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	objects := map[string]map[string]string{
		"prod-a": {"env": "prod", "tier": "a"},
		"prod-b": {"env": "prod", "tier": "b"},
		"dev-a":  {"env": "dev", "tier": "a"},
		"dev":    {"env": "dev"},
		"test-b": {"env": "test", "tier": "b"},
		"none":   nil,
	}
	for name, labels := range objects {
		cm := configMap(name, nil)
		cm.Labels = labels
		mustCreateConfigMap(t, cs, ns, cm)
	}
	for _, tc := range []struct {
		selector string
		want     []string
	}{
		{"", []string{"dev", "dev-a", "none", "prod-a", "prod-b", "test-b"}},
		{"env=prod", []string{"prod-a", "prod-b"}},
		{"env==dev", []string{"dev", "dev-a"}},
		{"env!=prod", []string{"dev", "dev-a", "none", "test-b"}},
		{"env in (prod,test)", []string{"prod-a", "prod-b", "test-b"}},
		{"env notin (prod,test)", []string{"dev", "dev-a", "none"}},
		{"tier", []string{"dev-a", "prod-a", "prod-b", "test-b"}},
		{"!tier", []string{"dev", "none"}},
		{"env=prod,tier=b", []string{"prod-b"}},
		{"env in (dev),tier", []string{"dev-a"}},
		{"env=nothing", nil},
	} {
		list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{LabelSelector: tc.selector})
		if err != nil {
			t.Errorf("selector %q: %v", tc.selector, err)
			continue
		}
		if got := sortedCopy(configMapNames(list.Items)); !equalStrings(got, tc.want) {
			t.Errorf("selector %q: got %v, want %v", tc.selector, got, tc.want)
		}
	}
}

func testFieldSelectors(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	for _, name := range []string{"one", "two", "three"} {
		mustCreateConfigMap(t, cs, ns, configMap(name, nil))
	}
	// Pods bound at creation to nodes that do not exist: nothing runs
	// them, so their status is only what this test writes.
	pods := cs.CoreV1().Pods(ns)
	for _, p := range []*corev1.Pod{pod("on-a", "node-a"), pod("on-b", "node-b"), pod("also-a", "node-a")} {
		if _, err := pods.Create(ctx(t), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	running, err := pods.Get(ctx(t), "on-b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running.Status.Phase = corev1.PodRunning
	if _, err := pods.UpdateStatus(ctx(t), running, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		resource, selector string
		want               []string
	}{
		{"configmaps", "metadata.name=two", []string{"two"}},
		{"configmaps", "metadata.name!=two", []string{"one", "three"}},
		{"configmaps", "metadata.namespace=" + ns, []string{"one", "three", "two"}},
		{"configmaps", "metadata.namespace=elsewhere", nil},
		{"pods", "spec.nodeName=node-a", []string{"also-a", "on-a"}},
		{"pods", "spec.nodeName!=node-a", []string{"on-b"}},
		{"pods", "status.phase=Running", []string{"on-b"}},
		{"pods", "status.phase=Pending", []string{"also-a", "on-a"}},
		{"pods", "spec.nodeName=node-a,metadata.name=on-a", []string{"on-a"}},
	} {
		var got []string
		opts := metav1.ListOptions{FieldSelector: tc.selector}
		if tc.resource == "pods" {
			list, err := pods.List(ctx(t), opts)
			if err != nil {
				t.Errorf("%s %q: %v", tc.resource, tc.selector, err)
				continue
			}
			for _, p := range list.Items {
				got = append(got, p.Name)
			}
		} else {
			list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), opts)
			if err != nil {
				t.Errorf("%s %q: %v", tc.resource, tc.selector, err)
				continue
			}
			got = configMapNames(list.Items)
		}
		if got = sortedCopy(got); !equalStrings(got, tc.want) {
			t.Errorf("%s %q: got %v, want %v", tc.resource, tc.selector, got, tc.want)
		}
	}
}

func testPagination(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	const created, pageSize = 120, 7
	// The namespace holds what the server puts there (rootCAConfigMap,
	// once its controller has run); it is paginated too.
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), rootCAConfigMap, metav1.GetOptions{})
		return err == nil, nil
	}, "the namespace's %s", rootCAConfigMap)
	before, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := createConfigMaps(t, cs, ns, "page", created, nil)
	for _, cm := range before.Items {
		want = append(want, cm.Name)
	}
	want = sortedCopy(want)
	total := len(want)

	var got []string
	var firstRV, cont string
	pages := 0
	for pages = 1; pages <= total+1; pages++ {
		list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{Limit: pageSize, Continue: cont})
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(list.Items) > pageSize {
			t.Fatalf("page %d has %d items, limit is %d", pages, len(list.Items), pageSize)
		}
		for _, cm := range list.Items {
			got = append(got, cm.Name)
		}
		if pages == 1 {
			firstRV = list.ResourceVersion
			// remainingItemCount is advisory ("clients should not rely on
			// it to be set"), but when set it must be right.
			if rem := list.RemainingItemCount; rem != nil && *rem != int64(total-pageSize) {
				t.Errorf("first page remainingItemCount %d, want %d", *rem, total-pageSize)
			}
			// Objects created after the first page are not part of
			// the paginated snapshot.
			mustCreateConfigMap(t, cs, ns, configMap("page-zzz-late", nil))
		} else if list.ResourceVersion != firstRV {
			t.Errorf("page %d is at resourceVersion %s, the first page at %s", pages, list.ResourceVersion, firstRV)
		}
		cont = list.Continue
		if cont == "" {
			break
		}
		if len(list.Items) == 0 {
			t.Fatalf("page %d is empty but has a continue token", pages)
		}
	}
	if wantPages := (total + pageSize - 1) / pageSize; pages != wantPages {
		t.Errorf("%d pages, want %d", pages, wantPages)
	}
	if !equalStrings(got, want) {
		t.Errorf("pages returned %d names (sorted: %v); want each of the %d exactly once, in name order", len(got), sortedCopy(got), total)
	}

	// A list without a limit now sees the late object too.
	all, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != total+1 || all.Continue != "" {
		t.Errorf("unpaginated list: %d items, continue %q", len(all.Items), all.Continue)
	}
}

func testListExactResourceVersion(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	v1 := mustCreateConfigMap(t, cs, ns, configMap("versioned", map[string]string{"v": "1"}))
	old, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldRV := old.ResourceVersion

	v1.Data["v"] = "2"
	if _, err := api.Update(ctx(t), v1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreateConfigMap(t, cs, ns, configMap("later", nil))

	for _, tc := range []struct {
		name string
		opts metav1.ListOptions
		want map[string]string // name -> data v
	}{
		{"exact old", metav1.ListOptions{ResourceVersion: oldRV, ResourceVersionMatch: metav1.ResourceVersionMatchExact},
			map[string]string{"versioned": "1"}},
		{"exact create", metav1.ListOptions{ResourceVersion: v1.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact},
			map[string]string{"versioned": "1"}},
		{"current", metav1.ListOptions{},
			map[string]string{"versioned": "2", "later": ""}},
		{"not older than old", metav1.ListOptions{ResourceVersion: oldRV, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan},
			nil},
	} {
		list, err := api.List(ctx(t), tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact && list.ResourceVersion != tc.opts.ResourceVersion {
			t.Errorf("%s: list is at resourceVersion %s, asked for exactly %s", tc.name, list.ResourceVersion, tc.opts.ResourceVersion)
		}
		if tc.want == nil {
			continue
		}
		got := map[string]string{}
		for _, cm := range list.Items {
			if cm.Name != rootCAConfigMap {
				got[cm.Name] = cm.Data["v"]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testDeleteCollection(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	createConfigMaps(t, cs, ns, "group-a", 10, map[string]string{"group": "a"})
	keep := createConfigMaps(t, cs, ns, "group-b", 5, map[string]string{"group": "b"})
	err := cs.CoreV1().ConfigMaps(ns).DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "group=a"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedCopy(configMapNames(list.Items)); !equalStrings(got, keep) {
		t.Errorf("after deletecollection group=a: %v, want %v", got, keep)
	}
}

func testNamespaceDeletion(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	createConfigMaps(t, cs, ns, "content", 5, nil)
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx(t), deployment("d", ptr.To[int32](0)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx(t), pod("p", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A finalizer holds the namespace in Terminating until released.
	held := configMap("held", nil)
	held.Finalizers = []string{"e2e.havre.dev/hold"}
	mustCreateConfigMap(t, cs, ns, held)

	if err := cs.CoreV1().Namespaces().Delete(ctx(t), ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx(t), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace gone at once although it has content: %v", err)
	}
	if got.Status.Phase != corev1.NamespaceTerminating || got.DeletionTimestamp == nil {
		t.Errorf("namespace after delete: phase %q deletionTimestamp %v, want Terminating and set", got.Status.Phase, got.DeletionTimestamp)
	}

	// No new content in a terminating namespace.
	_, err = cs.CoreV1().ConfigMaps(ns).Create(ctx(t), configMap("new", nil), metav1.CreateOptions{})
	expectStatus(t, err, 403, metav1.StatusReasonForbidden)

	// The content goes, except what a finalizer holds.
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 1 && list.Items[0].Name == "held" && list.Items[0].DeletionTimestamp != nil, nil
	}, "namespace content was not deleted")
	got, err = cs.CoreV1().Namespaces().Get(ctx(t), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace gone while a finalizer still holds its content: %v", err)
	}
	if got.Status.Phase != corev1.NamespaceTerminating {
		t.Errorf("namespace phase %q while content remains, want Terminating", got.Status.Phase)
	}

	// Releasing the finalizer lets the namespace disappear.
	_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx(t), "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx(t), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}, "namespace %s was not deleted", ns)
	for _, check := range []func() (int, error){
		func() (int, error) {
			l, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
			return lenOr(l, err)
		},
		func() (int, error) {
			l, err := cs.CoreV1().Secrets(ns).List(ctx(t), metav1.ListOptions{})
			return lenOr(l, err)
		},
		func() (int, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{})
			return lenOr(l, err)
		},
		func() (int, error) {
			l, err := cs.AppsV1().Deployments(ns).List(ctx(t), metav1.ListOptions{})
			return lenOr(l, err)
		},
	} {
		if n, err := check(); err != nil || n != 0 {
			t.Errorf("after namespace deletion a list found %d objects (err %v)", n, err)
		}
	}
}

// lenOr returns the number of items of a typed list.
func lenOr(l runtime.Object, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return meta.LenList(l), nil
}

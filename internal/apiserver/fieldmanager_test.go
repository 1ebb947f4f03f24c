package apiserver

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// benchPod is a pod as a Deployment's ReplicaSet creates it, after
// defaulting: the shape most writes have.
func benchPod() *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f7c9b6-x2k4p", Namespace: "default", GenerateName: "web-5d8f7c9b6-",
			Labels:          map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b6"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f7c9b6", UID: "u1"}}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "havre.local/demo/web:0.1", ImagePullPolicy: corev1.PullIfNotPresent,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
					PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3},
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace, DNSPolicy: corev1.DNSClusterFirst,
			SchedulerName: corev1.DefaultSchedulerName, SecurityContext: &corev1.PodSecurityContext{},
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable},
	}
}

// TestTrustedTypeConverterMatchesTheValidatingOne checks that converting
// typed objects without validation gives the same field sets and the same
// comparisons as upstream's converter, for the first object of a kind
// (which goes through the wrapped converter) and the ones after.
func TestTrustedTypeConverterMatchesTheValidatingOne(t *testing.T) {
	upstream := applyconfigurations.NewTypeConverter(apiScheme)
	trusted := newTrustedTypeConverter(upstream)
	running := benchPod()
	running.Spec.NodeName = "n1"
	running.Status.Phase = corev1.PodRunning
	running.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	replicas := int32(3)
	deploy := &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	for _, tc := range []struct {
		name     string
		old, new runtime.Object
	}{
		{"pod create", &corev1.Pod{TypeMeta: benchPod().TypeMeta}, benchPod()},
		{"pod status", benchPod(), running},
		{"pod again", running, benchPod()},
		{"deployment", &appsv1.Deployment{TypeMeta: deploy.TypeMeta}, deploy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 2 { // the second round hits the cache
				want := compareTyped(t, upstream, tc.old, tc.new)
				got := compareTyped(t, trusted, tc.old, tc.new)
				if !got.Added.Equals(want.Added) || !got.Modified.Equals(want.Modified) || !got.Removed.Equals(want.Removed) {
					t.Errorf("round %d: trusted converter's changes:\n%v\nupstream's:\n%v", round, got, want)
				}
			}
		})
	}
	if len(trusted.types) != 2 {
		t.Errorf("cached types: %v, want Pod and Deployment", trusted.types)
	}
}

// compareTyped converts both objects and returns the fields that differ,
// with the field set of the new one.
func compareTyped(t *testing.T, tc managedfields.TypeConverter, old, new runtime.Object) *typed.Comparison {
	t.Helper()
	o, err := tc.ObjectToTyped(old, typed.AllowDuplicates)
	if err != nil {
		t.Fatal(err)
	}
	n, err := tc.ObjectToTyped(new, typed.AllowDuplicates)
	if err != nil {
		t.Fatal(err)
	}
	cmp, err := o.Compare(n)
	if err != nil {
		t.Fatal(err)
	}
	set, err := n.ToFieldSet()
	if err != nil {
		t.Fatal(err)
	}
	cmp.Added = cmp.Added.Union(set)
	return cmp
}

// BenchmarkManagedFieldsPodCreate is the managedFields upkeep of one pod
// create, with upstream's converter and with the trusted one.
func BenchmarkManagedFieldsPodCreate(b *testing.B) {
	upstream := applyconfigurations.NewTypeConverter(apiScheme)
	for _, bc := range []struct {
		name string
		tc   managedfields.TypeConverter
	}{{"upstream", upstream}, {"trusted", newTrustedTypeConverter(upstream)}} {
		b.Run(bc.name, func(b *testing.B) {
			gvk := corev1.SchemeGroupVersion.WithKind("Pod")
			fm, err := managedfields.NewDefaultFieldManager(bc.tc, apiScheme, apiScheme, apiScheme, gvk, gvk.GroupVersion(), "", nil)
			if err != nil {
				b.Fatal(err)
			}
			live := &corev1.Pod{}
			for b.Loop() {
				fm.UpdateNoErrors(live, benchPod(), "bench")
			}
		})
	}
}

// BenchmarkManagedFieldsLeaseRenew is the managedFields upkeep of one node
// heartbeat: a Lease update that moves renewTime.
func BenchmarkManagedFieldsLeaseRenew(b *testing.B) {
	gvk := coordinationv1.SchemeGroupVersion.WithKind("Lease")
	fm, err := managedfields.NewDefaultFieldManager(getTypeConverter(), apiScheme, apiScheme, apiScheme, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	lease := func(t time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{TypeMeta: metav1.TypeMeta{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"},
			ObjectMeta: metav1.ObjectMeta{Name: "node-1", Namespace: "kube-node-lease",
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "node-1", UID: "u1"}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: new("node-1"), LeaseDurationSeconds: new(int32(40)),
				RenewTime: &metav1.MicroTime{Time: t}}}
	}
	t0 := time.Now()
	live := fm.UpdateNoErrors(&coordinationv1.Lease{TypeMeta: lease(t0).TypeMeta}, lease(t0), "agent").(*coordinationv1.Lease)
	for i := 0; b.Loop(); i++ {
		next := lease(t0.Add(time.Duration(i) * 10 * time.Second))
		next.ManagedFields = live.ManagedFields
		fm.UpdateNoErrors(live, next, "agent")
	}
}

package netpol

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestSlimPod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	now := metav1.Now()
	full := testPod("ns", "web", "node-0", "10.42.0.7", "app=web,tier=front", containerPort("http", corev1.ProtocolTCP, 8080))
	full.DeletionTimestamp = &now
	full.Annotations = map[string]string{"big": "value"}
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	full.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "b"}}
	full.Spec.Containers[0].Image = "web:1"
	full.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}}},
		{Name: "init", Image: "init:1"},
	}
	full.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	full.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true}}

	obj, err := slimPod(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Pod)
	// What the policer reads is the same.
	if podMatters(full, slim) {
		t.Errorf("podMatters(full, slim) = true: the slim pod lost something the policer uses")
	}
	if got, want := namedPorts(slim), namedPorts(full); !equality.Semantic.DeepEqual(got, want) || len(got) != 2 {
		t.Errorf("named ports %v, want %v (http and the sidecar's metrics)", got, want)
	}
	if got, want := statusIPs(slim), statusIPs(full); !slices.Equal(got, want) || len(got) != 1 {
		t.Errorf("addresses %v, want %v", got, want)
	}
	if slim.UID != full.UID || slim.CreationTimestamp != full.CreationTimestamp || slim.Spec.HostNetwork != full.Spec.HostNetwork {
		t.Errorf("identity lost: %+v", slim.ObjectMeta)
	}
	// What it does not read is gone.
	if slim.Annotations != nil || slim.ManagedFields != nil || slim.Spec.Containers[0].Env != nil || slim.Spec.Containers[0].Image != "" ||
		len(slim.Spec.InitContainers) != 1 || slim.Status.Conditions != nil || slim.Status.ContainerStatuses != nil {
		t.Errorf("slim pod keeps more than the policer uses: %+v", slim)
	}
	// A tombstone passes through.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: slim}
	if got, _ := slimPod(tomb); got != any(tomb) {
		t.Errorf("tombstone changed: %v", got)
	}
}

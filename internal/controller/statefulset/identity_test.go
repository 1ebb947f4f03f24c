package statefulset

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestParentAndOrdinal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parent  string
		ordinal int
	}{
		{"web-0", "web", 0},
		{"my-web-12", "my-web", 12},
		{"web", "", -1},
		{"web-x", "", -1},
		{"web-99999999999", "", -1},
	} {
		p, o := parentAndOrdinal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.name}})
		if p != tc.parent || o != tc.ordinal {
			t.Errorf("%s: %q %d, want %q %d", tc.name, p, o, tc.parent, tc.ordinal)
		}
	}
}

func TestTemplatePatchRestoresTemplate(t *testing.T) {
	old := newSet("web", 3)
	old.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "1"}}
	patch, err := templatePatch(old)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]map[string]map[string]any
	if err := json.Unmarshal(patch, &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded) != 1 || len(decoded["spec"]) != 1 || decoded["spec"]["template"]["$patch"] != "replace" {
		t.Fatalf("patch %s, want only spec.template with $patch replace", patch)
	}

	cur := newSet("web", 5)
	cur.Spec.Template.Spec.Containers[0].Image = "img:9"
	cur.Spec.Template.Spec.Containers = append(cur.Spec.Template.Spec.Containers, corev1.Container{Name: "side", Image: "s"})
	restored, err := applyRevision(cur, &appsv1.ControllerRevision{Data: runtimeRaw(patch)})
	if err != nil {
		t.Fatal(err)
	}
	cs := restored.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Image != "img:1" || len(cs[0].Env) != 1 {
		t.Errorf("restored containers %+v, want the old template replaced in", cs)
	}
	if *restored.Spec.Replicas != 5 {
		t.Errorf("replicas %d: a revision restores only the template", *restored.Spec.Replicas)
	}
}

func TestMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		v        *intstr.IntOrString
		replicas int32
		want     int
	}{
		{nil, 5, 1},
		{new(intstr.FromInt32(3)), 5, 3},
		{new(intstr.FromString("50%")), 5, 2},
		{new(intstr.FromString("10%")), 5, 1},
	} {
		set := newSet("web", tc.replicas)
		set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = tc.v
		if got := maxUnavailable(set); got != tc.want {
			t.Errorf("maxUnavailable(%v of %d) = %d, want %d", tc.v, tc.replicas, got, tc.want)
		}
	}
}

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }

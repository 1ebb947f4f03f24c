package apiserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage/bolt"
)

func TestAdmitPriority(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s, err := New(Config{Store: store, Resources: catalog.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.ensureSystemPriorityClasses(ctx); err != nil {
		t.Fatal(err)
	}
	pcs := s.handler("scheduling.k8s.io", "v1", "priorityclasses")
	create := func(name string, value int32, def bool, policy corev1.PreemptionPolicy) {
		t.Helper()
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: def}
		if policy != "" {
			pc.PreemptionPolicy = &policy
		}
		if _, err := pcs.create(ctx, pc, writeOptions{manager: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	create("high", 1000, false, "")
	create("never", 500, false, corev1.PreemptNever)

	lower := corev1.PreemptLowerPriority
	never := corev1.PreemptNever
	pod := func(class string, priority *int32, policy *corev1.PreemptionPolicy) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
			Spec: corev1.PodSpec{PriorityClassName: class, Priority: priority, PreemptionPolicy: policy}}
	}
	for _, tc := range []struct {
		name       string
		pod        *corev1.Pod
		wantClass  string
		wantPrio   int32
		wantPolicy corev1.PreemptionPolicy
		err        string
	}{
		{name: "no class, no default", pod: pod("", nil, nil), wantPrio: 0, wantPolicy: lower},
		{name: "no class, priority 0 given", pod: pod("", new(int32(0)), &lower), wantPrio: 0, wantPolicy: lower},
		{name: "no class, another priority given", pod: pod("", new(int32(7)), nil),
			err: "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name"},
		{name: "user class", pod: pod("high", nil, nil), wantClass: "high", wantPrio: 1000, wantPolicy: lower},
		{name: "class with policy Never", pod: pod("never", nil, nil), wantClass: "never", wantPrio: 500, wantPolicy: never},
		{name: "system class", pod: pod("system-node-critical", new(int32(2000001000)), nil), wantClass: "system-node-critical", wantPrio: 2000001000, wantPolicy: lower},
		{name: "missing class", pod: pod("nope", nil, nil), err: `pods "p" is forbidden: no PriorityClass with name nope was found`},
		{name: "priority given", pod: pod("high", new(int32(7)), nil),
			err: "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"},
		{name: "policy Never against the class", pod: pod("high", nil, &never),
			err: "the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admitPriority(s, ctx, tc.pod)
			if tc.err != "" {
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want 403 %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.pod.Spec.PriorityClassName != tc.wantClass || *tc.pod.Spec.Priority != tc.wantPrio || *tc.pod.Spec.PreemptionPolicy != tc.wantPolicy {
				t.Errorf("class %q priority %d policy %s", tc.pod.Spec.PriorityClassName, *tc.pod.Spec.Priority, *tc.pod.Spec.PreemptionPolicy)
			}
		})
	}

	// A globalDefault class applies to pods naming none; a priority given
	// must then be the default's.
	create("default-b", 300, true, "")
	p := pod("", nil, nil)
	if err := admitPriority(s, ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Spec.PriorityClassName != "default-b" || *p.Spec.Priority != 300 || *p.Spec.PreemptionPolicy != lower {
		t.Errorf("defaulted to class %q priority %d policy %s, want default-b 300 PreemptLowerPriority", p.Spec.PriorityClassName, *p.Spec.Priority, *p.Spec.PreemptionPolicy)
	}
	if err := admitPriority(s, ctx, pod("", new(int32(0)), nil)); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "computed 300") {
		t.Errorf("priority 0 with a default of 300: %v", err)
	}

	// Only one default can exist: a second one is refused on create and on
	// update; the default itself can still be updated.
	const second = "PriorityClass default-b is already marked as default. Only one default can exist"
	_, err = pcs.create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "default-a"}, Value: 200, GlobalDefault: true},
		writeOptions{manager: "test"})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `priorityclasses.scheduling.k8s.io "default-a" is forbidden: `+second) {
		t.Errorf("second default created: %v", err)
	}
	markDefault := func(name string) error {
		_, err := pcs.update(ctx, "", name, func(cur runtime.Object) (runtime.Object, error) {
			pc := cur.DeepCopyObject().(*schedulingv1.PriorityClass)
			pc.GlobalDefault = true
			pc.Description = "now the default"
			return pc, nil
		}, writeOptions{manager: "test"})
		return err
	}
	if err := markDefault("high"); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), second) {
		t.Errorf("another class marked default: %v", err)
	}
	if err := markDefault("default-b"); err != nil {
		t.Errorf("updating the default: %v", err)
	}

	// Were two defaults to exist (two creates racing), the lowest wins.
	if _, err := pcs.objs.create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "default-a"},
		Value: 200, GlobalDefault: true, PreemptionPolicy: &never}); err != nil {
		t.Fatal(err)
	}
	p = pod("", nil, nil)
	if err := admitPriority(s, ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Spec.PriorityClassName != "default-a" || *p.Spec.Priority != 200 || *p.Spec.PreemptionPolicy != never {
		t.Errorf("defaulted to class %q priority %d policy %s, want default-a 200 Never", p.Spec.PriorityClassName, *p.Spec.Priority, *p.Spec.PreemptionPolicy)
	}
}

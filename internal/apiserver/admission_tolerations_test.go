package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
)

func TestAddDefaultTolerations(t *testing.T) {
	secs := func(v int64) *int64 { return &v }
	notReady := func(s int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(s)}
	}
	unreachable := func(s int64) corev1.Toleration {
		return corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(s)}
	}
	other := corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name                string
		in                  []corev1.Toleration
		notReadyS, unreachS int64
		want                []corev1.Toleration
	}{
		{name: "none: both added with 300s", want: []corev1.Toleration{notReady(300), unreachable(300)}},
		{name: "configured seconds", notReadyS: 5, unreachS: 7, want: []corev1.Toleration{notReady(5), unreachable(7)}},
		{name: "others kept", in: []corev1.Toleration{other}, want: []corev1.Toleration{other, notReady(300), unreachable(300)}},
		{name: "own not-ready toleration kept", in: []corev1.Toleration{notReady(10)}, want: []corev1.Toleration{notReady(10), unreachable(300)}},
		{
			name: "forever not-ready toleration without effect",
			in:   []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}},
			want: []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists}, unreachable(300)},
		},
		{
			name: "tolerate everything",
			in:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			want: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
		{
			name: "NoSchedule toleration does not count",
			in:   []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			want: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}, notReady(300), unreachable(300)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tc.in}}
			addDefaultTolerations(pod, tc.notReadyS, tc.unreachS)
			if !apiequality.Semantic.DeepEqual(pod.Spec.Tolerations, tc.want) {
				t.Errorf("tolerations\n got %+v\nwant %+v", pod.Spec.Tolerations, tc.want)
			}
		})
	}
}

// TestAdmitDefaultTolerationSeconds: a pod's own tolerations are kept as
// given, 300 seconds included, and the missing one gets the configured
// seconds.
func TestAdmitDefaultTolerationSeconds(t *testing.T) {
	secs := func(v int64) *int64 { return &v }
	s := &Server{cfg: Config{DefaultNotReadyTolerationSeconds: 5, DefaultUnreachableTolerationSeconds: 7}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(300)},
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(300)},
	}}}
	if err := admitDefaultTolerationSeconds(s, t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"gpu": 300, corev1.TaintNodeNotReady: 300, corev1.TaintNodeUnreachable: 7}
	if len(pod.Spec.Tolerations) != 3 {
		t.Fatalf("tolerations %+v", pod.Spec.Tolerations)
	}
	for _, tol := range pod.Spec.Tolerations {
		if *tol.TolerationSeconds != want[tol.Key] {
			t.Errorf("%s: %ds, want %d", tol.Key, *tol.TolerationSeconds, want[tol.Key])
		}
	}
}

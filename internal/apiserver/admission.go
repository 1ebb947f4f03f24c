package apiserver

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// podAdmitter is one pod admission step of kube-apiserver's (Priority,
// DefaultTolerationSeconds, ...): it may change a pod being created, or
// refuse it with an API error.
type podAdmitter struct {
	name  string
	admit func(s *Server, ctx context.Context, pod *corev1.Pod) error
}

// podAdmitters run in order on every pod create, after defaulting and
// before validation. Steps register themselves from files of their own
// (admission_<name>.go) with registerPodAdmitter.
var podAdmitters []podAdmitter

func registerPodAdmitter(name string, admit func(s *Server, ctx context.Context, pod *corev1.Pod) error) {
	podAdmitters = append(podAdmitters, podAdmitter{name, admit})
}

// admitPod runs the pod admission steps.
func (s *Server) admitPod(ctx context.Context, obj runtime.Object) error {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	for _, a := range podAdmitters {
		if err := a.admit(s, ctx, pod); err != nil {
			return err
		}
	}
	return nil
}

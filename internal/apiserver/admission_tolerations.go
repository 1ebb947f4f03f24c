package apiserver

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/registry/core"
)

func init() { registerPodAdmitter("DefaultTolerationSeconds", admitDefaultTolerationSeconds) }

// admitDefaultTolerationSeconds is kube-apiserver's DefaultTolerationSeconds
// admission plugin: a pod that does not tolerate the node controller's
// not-ready and unreachable NoExecute taints gets tolerations for them
// limited in time, so that its pods are evicted from a failed node after
// that time (300s unless configured).
func admitDefaultTolerationSeconds(s *Server, _ context.Context, pod *corev1.Pod) error {
	addDefaultTolerations(pod, s.cfg.DefaultNotReadyTolerationSeconds, s.cfg.DefaultUnreachableTolerationSeconds)
	return nil
}

// addDefaultTolerations adds the not-ready and unreachable tolerations a pod
// lacks; zero seconds mean the default.
func addDefaultTolerations(pod *corev1.Pod, notReadySeconds, unreachableSeconds int64) {
	if notReadySeconds == 0 {
		notReadySeconds = core.DefaultTolerationSeconds
	}
	if unreachableSeconds == 0 {
		unreachableSeconds = core.DefaultTolerationSeconds
	}
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if noExecute && (t.Key == corev1.TaintNodeNotReady || t.Key == "") {
			notReady = true
		}
		if noExecute && (t.Key == corev1.TaintNodeUnreachable || t.Key == "") {
			unreachable = true
		}
	}
	if !notReady {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
			Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
			TolerationSeconds: &notReadySeconds,
		})
	}
	if !unreachable {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
			Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
			TolerationSeconds: &unreachableSeconds,
		})
	}
}

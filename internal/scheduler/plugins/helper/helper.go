// Package helper holds what several scheduler plugins share: score
// normalization and taint filters.
package helper

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// DefaultNormalizeScore scales scores to [0, maxPriority] relative to the
// highest one; reverse turns high raw scores into low ones.
func DefaultNormalizeScore(maxPriority int64, reverse bool, scores []framework.NodeScore) *framework.Status {
	var highest int64
	for _, s := range scores {
		highest = max(highest, s.Score)
	}
	if highest == 0 {
		if reverse {
			for i := range scores {
				scores[i].Score = maxPriority
			}
		}
		return nil
	}
	for i := range scores {
		s := maxPriority * scores[i].Score / highest
		if reverse {
			s = maxPriority - s
		}
		scores[i].Score = s
	}
	return nil
}

// DoNotScheduleTaints selects the taints that keep pods off a node:
// NoSchedule and NoExecute.
func DoNotScheduleTaints(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

package nodelifecycle

import (
	"context"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The NoExecute taints of not Ready and unreachable nodes.
var (
	notReadyTaint    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
)

// conditionTaints maps node conditions to the NoSchedule taints they put
// on the node.
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// conditionTaintKeys are the NoSchedule taint keys the controller owns.
var conditionTaintKeys = map[string]bool{
	corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true, corev1.TaintNodeMemoryPressure: true,
	corev1.TaintNodeDiskPressure: true, corev1.TaintNodeNetworkUnavailable: true, corev1.TaintNodePIDPressure: true,
	corev1.TaintNodeUnschedulable: true,
}

func noExecuteTaints(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

// hasTaint reports whether taints hold one with t's key and effect.
func hasTaint(taints []corev1.Taint, t corev1.Taint) bool {
	return slices.ContainsFunc(taints, func(o corev1.Taint) bool { return o.MatchTaint(&t) })
}

// noScheduleTaints are the NoSchedule taints the node's conditions and
// spec.unschedulable call for.
func noScheduleTaints(node *corev1.Node) []corev1.Taint {
	var taints []corev1.Taint
	for _, cond := range node.Status.Conditions {
		if key, ok := conditionTaints[cond.Type][cond.Status]; ok {
			taints = append(taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		taints = append(taints, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return taints
}

// doNoScheduleTaintingPass makes the node's controller-owned NoSchedule
// taints match its conditions and spec.unschedulable.
func (c *Controller) doNoScheduleTaintingPass(ctx context.Context, name string) error {
	node, err := c.nodeLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	want := noScheduleTaints(node)
	var add, del []corev1.Taint
	for _, t := range want {
		if !hasTaint(node.Spec.Taints, t) {
			add = append(add, t)
		}
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule && conditionTaintKeys[t.Key] && !hasTaint(want, t) {
			del = append(del, t)
		}
	}
	if len(add) == 0 && len(del) == 0 {
		return nil
	}
	return c.swapTaints(ctx, node, add, del)
}

// swapTaints adds taints (unless present) and removes others (matched by
// key and effect) in one update of the node, retrying on conflicts with a
// fresh copy. NoExecute taints get their timeAdded.
func (c *Controller) swapTaints(ctx context.Context, node *corev1.Node, add, del []corev1.Taint) error {
	first := true
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var cur *corev1.Node
		if first {
			cur = node.DeepCopy()
			first = false
		} else {
			var err error
			if cur, err = c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		taints := slices.DeleteFunc(slices.Clone(cur.Spec.Taints), func(t corev1.Taint) bool { return hasTaint(del, t) })
		for _, t := range add {
			if hasTaint(taints, t) {
				continue
			}
			if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded == nil {
				now := metav1.NewTime(c.clock.Now())
				t.TimeAdded = &now
			}
			taints = append(taints, t)
		}
		if apiequality.Semantic.DeepEqual(taints, cur.Spec.Taints) {
			return nil // nothing to change
		}
		if len(taints) == 0 {
			taints = nil
		}
		cur.Spec.Taints = taints
		_, err := c.client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			slog.Info("node taints updated", "node", node.Name, "added", taintStrings(add), "removed", taintStrings(del))
		}
		return err
	})
}

func taintStrings(taints []corev1.Taint) []string {
	out := make([]string, len(taints))
	for i := range taints {
		out[i] = taints[i].ToString()
	}
	return out
}

// processTaintBaseEviction taints a node that is not Ready (through its
// zone's rate-limited queue, or at once when it only changes from one
// NoExecute taint to the other), and untaints a Ready one.
func (c *Controller) processTaintBaseEviction(ctx context.Context, node *corev1.Node, observed *corev1.NodeCondition) {
	switch observed.Status {
	case corev1.ConditionFalse:
		if hasTaint(node.Spec.Taints, unreachableTaint) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{notReadyTaint}, []corev1.Taint{unreachableTaint}); err != nil {
				slog.Warn("swapping the unreachable taint for not-ready", "node", node.Name, "err", err)
			}
		} else {
			c.markNodeForTainting(node, corev1.ConditionFalse)
		}
	case corev1.ConditionUnknown:
		if hasTaint(node.Spec.Taints, notReadyTaint) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{unreachableTaint}, []corev1.Taint{notReadyTaint}); err != nil {
				slog.Warn("swapping the not-ready taint for unreachable", "node", node.Name, "err", err)
			}
		} else {
			c.markNodeForTainting(node, corev1.ConditionUnknown)
		}
	case corev1.ConditionTrue:
		if err := c.markNodeAsReachable(ctx, node); err != nil {
			slog.Warn("removing the NoExecute taints of a Ready node", "node", node.Name, "err", err)
		}
	}
}

// markNodeForTainting queues the node in its zone's tainter.
func (c *Controller) markNodeForTainting(node *corev1.Node, status corev1.ConditionStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tainters[zoneKey(node)]
	if t == nil {
		return
	}
	if status == corev1.ConditionFalse && !hasTaint(node.Spec.Taints, notReadyTaint) ||
		status == corev1.ConditionUnknown && !hasTaint(node.Spec.Taints, unreachableTaint) {
		t.remove(node.Name)
	}
	t.add(node.Name)
}

// markNodeAsReachable removes the node's NoExecute taints and its place in
// the tainter.
func (c *Controller) markNodeAsReachable(ctx context.Context, node *corev1.Node) error {
	if hasTaint(node.Spec.Taints, unreachableTaint) || hasTaint(node.Spec.Taints, notReadyTaint) {
		if err := c.swapTaints(ctx, node, nil, []corev1.Taint{unreachableTaint, notReadyTaint}); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tainters[zoneKey(node)]; t != nil {
		t.remove(node.Name)
	}
	return nil
}

// doNoExecuteTaintingPass taints the queued nodes of every zone, as fast
// as the zone's rate allows.
func (c *Controller) doNoExecuteTaintingPass(ctx context.Context) {
	c.mu.Lock()
	zones := make([]*tainter, 0, len(c.tainters))
	for _, t := range c.tainters {
		zones = append(zones, t)
	}
	c.mu.Unlock()
	for _, t := range zones {
		for {
			c.mu.Lock()
			name, ok := t.next()
			c.mu.Unlock()
			if !ok {
				break
			}
			if !c.taintNode(ctx, name) {
				c.mu.Lock()
				t.requeue(name)
				c.mu.Unlock()
				break
			}
		}
	}
}

// taintNode gives a queued node the NoExecute taint of its Ready
// condition; it returns false when that is to be tried again.
func (c *Controller) taintNode(ctx context.Context, name string) bool {
	node, err := c.nodeLister.Get(name)
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		return false
	}
	ready := getCondition(&node.Status, corev1.NodeReady)
	if ready == nil {
		return false
	}
	var add, opposite corev1.Taint
	switch ready.Status {
	case corev1.ConditionFalse:
		add, opposite = notReadyTaint, unreachableTaint
	case corev1.ConditionUnknown:
		add, opposite = unreachableTaint, notReadyTaint
	default:
		return true // Ready again
	}
	if err := c.swapTaints(ctx, node, []corev1.Taint{add}, []corev1.Taint{opposite}); err != nil {
		slog.Warn("tainting a node", "node", name, "taint", add.ToString(), "err", err)
		return false
	}
	return true
}

package daemonset

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rollingUpdate replaces old pods. Without surge it deletes old pods while
// fewer than maxUnavailable nodes are without an available pod, and manage
// creates their replacements; with surge it creates new pods next to old
// ones on up to maxSurge nodes and deletes each old pod once the new one is
// available.
func (c *Controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string) error {
	nodeToPods, err := c.nodesToDaemonPods(ctx, ds, false)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %w", ds.Name, err)
	}
	maxSurge, maxUnavail, desired := c.updatedDesiredNodeCounts(ds, nodes, nodeToPods)
	now := metav1.NewTime(c.now())
	// Visit nodes in a stable order so that replacements are predictable.
	names := make([]string, 0, len(nodeToPods))
	for n := range nodeToPods {
		names = append(names, n)
	}
	sort.Strings(names)

	if maxSurge == 0 {
		unavailable := 0
		var replace, candidates []string
		for _, node := range names {
			newPod, oldPod, ok := findUpdatedPodsOnNode(ds, nodeToPods[node], hash)
			switch {
			case !ok:
				// Extra pods: manage prunes them; count the node unavailable.
				unavailable++
			case (oldPod == nil) == (newPod == nil):
				// Nothing there yet, or both: manage acts.
				unavailable++
			case newPod != nil:
				if !podAvailable(newPod, ds.Spec.MinReadySeconds, now) {
					unavailable++
				}
			case !podAvailable(oldPod, ds.Spec.MinReadySeconds, now):
				// An unavailable old pod costs nothing to replace.
				replace = append(replace, oldPod.Name)
				unavailable++
			case unavailable < maxUnavail:
				candidates = append(candidates, oldPod.Name)
			}
		}
		n := min(max(maxUnavail-unavailable, 0), len(candidates))
		del := append(replace, candidates[:n]...)
		if len(del) > 0 {
			slog.Info("rolling update of a daemonset deletes old pods", "daemonset", keyOf(ds), "pods", del, "maxUnavailable", maxUnavail)
		}
		return c.syncNodes(ctx, ds, del, nil, hash)
	}

	var del, notRunHere, candidateNodes, allowedNodes []string
	surging, available := 0, 0
	for _, node := range names {
		newPod, oldPod, ok := findUpdatedPodsOnNode(ds, nodeToPods[node], hash)
		if !ok {
			surging++
			continue
		}
		switch {
		case oldPod != nil && podAvailable(oldPod, ds.Spec.MinReadySeconds, now):
			available++
		case oldPod == nil && newPod != nil && podAvailable(newPod, ds.Spec.MinReadySeconds, now):
			available++
		}
		switch {
		case oldPod == nil:
			// manage creates the pod if needed
		case newPod == nil:
			n, err := c.nodes.Get(node)
			if err != nil {
				return fmt.Errorf("couldn't get node for nodeName %q: %w", node, err)
			}
			run, _ := shouldRun(n, ds)
			switch {
			case !podAvailable(oldPod, ds.Spec.MinReadySeconds, now):
				if !run {
					del = append(del, oldPod.Name)
					continue
				}
				allowedNodes = append(allowedNodes, node)
			case !run:
				notRunHere = append(notRunHere, oldPod.Name)
			case surging < maxSurge:
				candidateNodes = append(candidateNodes, node)
			}
		default:
			if !podAvailable(newPod, ds.Spec.MinReadySeconds, now) {
				surging++
				continue
			}
			del = append(del, oldPod.Name)
		}
	}
	// With surge the set stays fully available: an old pod on a node it
	// no longer fits goes only once a pod elsewhere is available.
	if deletable := min(available-desired, len(notRunHere)); deletable > 0 {
		del = append(del, notRunHere[:deletable]...)
	}
	n := min(max(maxSurge-surging, 0), len(candidateNodes))
	create := append(allowedNodes, candidateNodes[:n]...)
	return c.syncNodes(ctx, ds, del, create, hash)
}

// updatedDesiredNodeCounts returns the surge and unavailability allowed
// for the nodes that should run the set (which it adds to nodeToPods,
// with no pods, where missing) and how many nodes that is.
func (c *Controller) updatedDesiredNodeCounts(ds *appsv1.DaemonSet, nodes []*corev1.Node, nodeToPods map[string][]*corev1.Pod) (maxSurge, maxUnavail, desired int) {
	for _, node := range nodes {
		if run, _ := shouldRun(node, ds); !run {
			continue
		}
		desired++
		if _, ok := nodeToPods[node.Name]; !ok {
			nodeToPods[node.Name] = nil
		}
	}
	maxUnavail = unavailableCount(ds, desired)
	maxSurge = surgeCount(ds, desired)
	if desired > 0 && maxUnavail == 0 && maxSurge == 0 {
		// An impossible configuration: accept unavailability, as upstream.
		maxUnavail = 1
	}
	return maxSurge, maxUnavail, desired
}

// findUpdatedPodsOnNode returns the node's live new and old pod; ok is
// false when there are several of either (manage prunes them first).
func findUpdatedPodsOnNode(ds *appsv1.DaemonSet, pods []*corev1.Pod, hash string) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if isUpdated(p, ds, hash) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

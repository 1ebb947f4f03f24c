package daemonset

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// updateStatus counts the set's pods per node and writes the status when
// it changed; observedGeneration only moves when the sync acted on the
// current spec.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string, observed bool) error {
	nodeToPods, err := c.nodesToDaemonPods(ctx, ds, false)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %w", ds.Name, err)
	}
	now := metav1.NewTime(c.now())
	var st appsv1.DaemonSetStatus
	for _, node := range nodes {
		run, _ := shouldRun(node, ds)
		pods := nodeToPods[node.Name]
		scheduled := len(pods) > 0
		if !run {
			if scheduled {
				st.NumberMisscheduled++
			}
			continue
		}
		st.DesiredNumberScheduled++
		if !scheduled {
			continue
		}
		st.CurrentNumberScheduled++
		// The oldest pod of the node speaks for it.
		sortOldestFirst(pods)
		pod := pods[0]
		if podReady(pod) {
			st.NumberReady++
			if podAvailable(pod, ds.Spec.MinReadySeconds, now) {
				st.NumberAvailable++
			}
		}
		if isUpdated(pod, ds, hash) {
			st.UpdatedNumberScheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable

	if err := c.storeStatus(ctx, ds, st, observed); err != nil {
		return err
	}
	// Availability comes with time: look again after minReadySeconds.
	if ds.Spec.MinReadySeconds > 0 && st.NumberReady != st.NumberAvailable {
		c.enqueueAfter(ds, time.Duration(ds.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

// storeStatus writes the counts of st to the set, retrying once from a
// fresh read on a conflict.
func (c *Controller) storeStatus(ctx context.Context, ds *appsv1.DaemonSet, st appsv1.DaemonSetStatus, observed bool) error {
	cur := &ds.Status
	if sameCounts(cur, &st) && (!observed || cur.ObservedGeneration >= ds.Generation) {
		return nil
	}
	toUpdate := ds.DeepCopy()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if observed {
			toUpdate.Status.ObservedGeneration = ds.Generation
		}
		s := &toUpdate.Status
		s.DesiredNumberScheduled, s.CurrentNumberScheduled = st.DesiredNumberScheduled, st.CurrentNumberScheduled
		s.NumberMisscheduled, s.NumberReady = st.NumberMisscheduled, st.NumberReady
		s.UpdatedNumberScheduled, s.NumberAvailable, s.NumberUnavailable = st.UpdatedNumberScheduled, st.NumberAvailable, st.NumberUnavailable
		if _, err = c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, toUpdate, metav1.UpdateOptions{}); err == nil {
			return nil
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		fresh, getErr := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		if getErr != nil {
			return getErr
		}
		toUpdate = fresh
	}
	return err
}

func sameCounts(a, b *appsv1.DaemonSetStatus) bool {
	return a.DesiredNumberScheduled == b.DesiredNumberScheduled &&
		a.CurrentNumberScheduled == b.CurrentNumberScheduled &&
		a.NumberMisscheduled == b.NumberMisscheduled &&
		a.NumberReady == b.NumberReady &&
		a.UpdatedNumberScheduled == b.UpdatedNumberScheduled &&
		a.NumberAvailable == b.NumberAvailable &&
		a.NumberUnavailable == b.NumberUnavailable
}

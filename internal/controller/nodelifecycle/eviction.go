package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// The DisruptionTarget condition of pods deleted for a NoExecute taint.
const (
	reasonDeletionByTaintManager = "DeletionByTaintManager"
	messageDeletionByTaint       = "Taint manager: deleting due to NoExecute taint"
	reasonTaintManagerEviction   = "TaintManagerEviction"
)

// scheduledEviction is a pod whose toleration time is running.
type scheduledEviction struct {
	uid     types.UID
	started time.Time
}

func splitKey(key string) (namespace, name string, err error) {
	ns, n, ok := strings.Cut(key, "/")
	if !ok {
		return "", "", fmt.Errorf("bad pod key %q", key)
	}
	return ns, n, nil
}

// matchingTolerations reports whether every taint is tolerated, and the
// first toleration tolerating each.
func matchingTolerations(taints []corev1.Taint, tolerations []corev1.Toleration) (bool, []corev1.Toleration) {
	var used []corev1.Toleration
	for i := range taints {
		found := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(klog.Background(), &taints[i], false) {
				used = append(used, tolerations[j])
				found = true
				break
			}
		}
		if !found {
			return false, nil
		}
	}
	return true, used
}

// minTolerationTime is the shortest tolerationSeconds of the tolerations
// (0 for none or a non-positive one), or -1 when they all tolerate
// forever.
func minTolerationTime(tolerations []corev1.Toleration) time.Duration {
	if len(tolerations) == 0 {
		return 0
	}
	least := int64(math.MaxInt64)
	for _, t := range tolerations {
		if t.TolerationSeconds == nil {
			continue
		}
		if *t.TolerationSeconds <= 0 {
			return 0
		}
		least = min(least, *t.TolerationSeconds)
	}
	if least == math.MaxInt64 {
		return -1
	}
	return time.Duration(least) * time.Second
}

// processPodTaints deletes a pod from a node with NoExecute taints it does
// not tolerate, at once or once its tolerations' time is over, and forgets
// a scheduled deletion when the taints are gone.
func (c *Controller) processPodTaints(ctx context.Context, key string, pod *corev1.Pod) error {
	node, err := c.nodeLister.Get(pod.Spec.NodeName)
	var taints []corev1.Taint
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	default:
		taints = noExecuteTaints(node.Spec.Taints)
	}
	if len(taints) == 0 {
		c.cancelEviction(key, pod)
		return nil
	}
	if pod.DeletionTimestamp != nil {
		c.forgetEviction(key)
		return nil
	}
	now := c.clock.Now()
	all, used := matchingTolerations(taints, pod.Spec.Tolerations)
	if !all {
		return c.evict(ctx, key, pod)
	}
	wait := minTolerationTime(used)
	if wait < 0 {
		c.cancelEviction(key, pod)
		return nil
	}
	c.mu.Lock()
	s, ok := c.evictions[key]
	if !ok || s.uid != pod.UID {
		s = scheduledEviction{uid: pod.UID, started: now}
		c.evictions[key] = s
	}
	c.mu.Unlock()
	if fire := s.started.Add(wait); now.Before(fire) {
		c.podQueue.AddAfter(key, fire.Sub(now))
		return nil
	}
	return c.evict(ctx, key, pod)
}

// evict deletes the pod after adding its DisruptionTarget condition, as
// the taint manager does.
func (c *Controller) evict(ctx context.Context, key string, cached *corev1.Pod) error {
	c.evictRecorder.Eventf(cached, corev1.EventTypeNormal, reasonTaintManagerEviction, "Marking for deletion Pod %s", key)
	pods := c.client.CoreV1().Pods(cached.Namespace)
	pod, err := pods.Get(ctx, cached.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.forgetEviction(key)
		return nil
	}
	if err != nil {
		return err
	}
	if pod.UID != cached.UID || pod.DeletionTimestamp != nil {
		c.forgetEviction(key)
		return nil
	}
	if setDisruptionTarget(&pod.Status, c.clock.Now()) {
		if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				c.forgetEviction(key)
				return nil
			}
			return err
		}
	}
	uid := cached.UID
	err = pods.Delete(ctx, cached.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	slog.Info("evicted a pod from a NoExecute-tainted node", "pod", key, "node", cached.Spec.NodeName)
	c.forgetEviction(key)
	return nil
}

// setDisruptionTarget sets the DisruptionTarget condition; it reports
// whether that changed the status.
func setDisruptionTarget(st *corev1.PodStatus, now time.Time) bool {
	cond := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: reasonDeletionByTaintManager, Message: messageDeletionByTaint, LastTransitionTime: metav1.NewTime(now)}
	for i := range st.Conditions {
		o := &st.Conditions[i]
		if o.Type != corev1.DisruptionTarget {
			continue
		}
		if o.Status == cond.Status && o.Reason == cond.Reason && o.Message == cond.Message {
			return false
		}
		if o.Status == cond.Status {
			cond.LastTransitionTime = o.LastTransitionTime
		}
		*o = cond
		return true
	}
	st.Conditions = append(st.Conditions, cond)
	return true
}

// cancelEviction forgets a scheduled deletion, with an event.
func (c *Controller) cancelEviction(key string, pod *corev1.Pod) {
	c.mu.Lock()
	_, ok := c.evictions[key]
	delete(c.evictions, key)
	c.mu.Unlock()
	if ok {
		c.evictRecorder.Eventf(pod, corev1.EventTypeNormal, reasonTaintManagerEviction, "Cancelling deletion of Pod %s", key)
	}
}

func (c *Controller) forgetEviction(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.evictions, key)
}

package daemonset

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// manage creates the pods missing on nodes that should run one and deletes
// those on nodes that should not, failed ones, and extra ones.
func (c *Controller) manage(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string) error {
	nodeToPods, err := c.nodesToDaemonPods(ctx, ds, false)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %w", ds.Name, err)
	}
	var create, del []string
	for _, node := range nodes {
		nc, nd := c.podsShouldBeOnNode(node, nodeToPods, ds, hash)
		create = append(create, nc...)
		del = append(del, nd...)
	}
	// Unbound pods aimed at nodes that are gone would never be scheduled
	// (nor collected): delete them.
	exists := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		exists[n.Name] = true
	}
	for node, pods := range nodeToPods {
		if exists[node] {
			continue
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				del = append(del, p.Name)
			}
		}
	}
	return c.syncNodes(ctx, ds, del, create, hash)
}

// podsShouldBeOnNode returns the node if it needs a daemon pod, and the
// pods on it to delete.
func (c *Controller) podsShouldBeOnNode(node *corev1.Node, nodeToPods map[string][]*corev1.Pod, ds *appsv1.DaemonSet, hash string) (create, del []string) {
	run, keep := shouldRun(node, ds)
	pods, exists := nodeToPods[node.Name]
	switch {
	case run && !exists:
		return []string{node.Name}, nil
	case keep:
		var running []*corev1.Pod
		for _, pod := range pods {
			if pod.DeletionTimestamp != nil {
				continue
			}
			switch pod.Status.Phase {
			case corev1.PodFailed:
				// Kill it, with backoff: a node may keep rejecting it.
				key := string(ds.UID) + "/" + node.Name
				now := c.failedBackoff.Clock.Now()
				if c.failedBackoff.IsInBackOffSinceUpdate(key, now) {
					c.enqueueAfter(ds, c.failedBackoff.Get(key))
					continue
				}
				c.failedBackoff.Next(key, now)
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node.Name)
				del = append(del, pod.Name)
			case corev1.PodSucceeded:
				del = append(del, pod.Name)
			default:
				running = append(running, pod)
			}
		}
		sortOldestFirst(running)
		if !allowsSurge(ds) {
			// One pod per node: keep the oldest.
			for _, p := range running[min(1, len(running)):] {
				del = append(del, p.Name)
			}
			return create, del
		}
		if len(running) <= 1 {
			if len(running) == 0 && run {
				create = append(create, node.Name)
			}
			return create, del
		}
		// Surging: keep the oldest new pod, and the oldest old pod while
		// the new one is not available yet (unless the old one is not ready
		// either).
		var oldestNew, oldestOld *corev1.Pod
		for _, p := range running {
			switch {
			case p.Labels[hashLabel] == hash && oldestNew == nil:
				oldestNew = p
			case p.Labels[hashLabel] != hash && oldestOld == nil:
				oldestOld = p
			default:
				del = append(del, p.Name)
			}
		}
		if oldestNew != nil && oldestOld != nil &&
			(!podReady(oldestOld) || podAvailable(oldestNew, ds.Spec.MinReadySeconds, metav1.NewTime(c.now()))) {
			del = append(del, oldestOld.Name)
		}
	case exists:
		// Should not run here any more.
		for _, p := range pods {
			if p.DeletionTimestamp == nil {
				del = append(del, p.Name)
			}
		}
	}
	return create, del
}

// syncNodes creates a pod on each node of create and deletes the pods of
// del, in batches doubling from one, after recording the expectations.
func (c *Controller) syncNodes(ctx context.Context, ds *appsv1.DaemonSet, del, create []string, hash string) error {
	key := keyOf(ds)
	createN, delN := min(len(create), burstReplicas), min(len(del), burstReplicas)
	c.expectations.set(key, createN, delN)

	template := podTemplate(ds, hash)
	var errs []error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	attempted := slowStartBatch(createN, func(i int) error {
		pod := newPod(ds, template, create[i])
		out, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			c.expectations.creationObserved(key) // will not be observed
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return err // the namespace is going away: say nothing
			}
			c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
			fail(err)
			return err
		}
		c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", out.Name)
		return nil
	})
	if skipped := createN - attempted; skipped > 0 {
		// Creations never attempted will not be observed either.
		c.expectations.lower(key, skipped, 0)
	}

	var wg sync.WaitGroup
	for _, name := range del[:delN] {
		wg.Go(func() {
			err := c.client.CoreV1().Pods(ds.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
			if err == nil {
				c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", name)
				return
			}
			c.expectations.deletionObserved(key)
			if !apierrors.IsNotFound(err) {
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				fail(err)
			}
		})
	}
	wg.Wait()
	return utilerrors.NewAggregate(errs)
}

// slowStartBatch calls fn for 0..n-1 in concurrent batches of 1, 2, 4...,
// stopping after a batch with a failure. It returns how many calls were
// made.
func slowStartBatch(n int, fn func(i int) error) int {
	next := 0
	for batch := min(1, n); batch > 0; batch = min(2*batch, n-next) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for k := range batch {
			wg.Go(func() { errs[k] = fn(next + k) })
		}
		wg.Wait()
		next += batch
		if utilerrors.NewAggregate(errs) != nil {
			break
		}
	}
	return next
}

// podTemplate is the set's template as its pods get it: the daemon
// tolerations, the template generation (when recorded) and hash labels.
func podTemplate(ds *appsv1.DaemonSet, hash string) corev1.PodTemplateSpec {
	t := *ds.Spec.Template.DeepCopy()
	addDaemonTolerations(&t.Spec)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	if gen, ok := templateGeneration(ds); ok {
		t.Labels[templateGenerationLabel] = strconv.FormatInt(gen, 10)
	}
	if hash != "" {
		t.Labels[hashLabel] = hash
	}
	return t
}

// templateGeneration reads the set's deprecated template generation
// annotation.
func templateGeneration(ds *appsv1.DaemonSet) (int64, bool) {
	v, ok := ds.Annotations[templateGenerationAnnotation]
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseInt(v, 10, 64)
	return gen, err == nil
}

// newPod is the daemon pod for node: named <ds>-<random>, controlled by
// ds, placed on the node by its required node affinity.
func newPod(ds *appsv1.DaemonSet, template corev1.PodTemplateSpec, node string) *corev1.Pod {
	t := template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Spec: t.Spec,
	}
	pod.Spec.Affinity = nodeAffinityFor(pod.Spec.Affinity, node)
	return pod
}

// isUpdated reports whether the pod is of the set's current template.
func isUpdated(pod *corev1.Pod, ds *appsv1.DaemonSet, hash string) bool {
	if hash != "" && pod.Labels[hashLabel] == hash {
		return true
	}
	gen, ok := templateGeneration(ds)
	return ok && pod.Labels[templateGenerationLabel] == strconv.FormatInt(gen, 10)
}

// surge and unavailability of a rolling update, scaled to n nodes (rounded
// up).
func surgeCount(ds *appsv1.DaemonSet, n int) int {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, n, true)
	if err != nil {
		return 0
	}
	return v
}

func unavailableCount(ds *appsv1.DaemonSet, n int) int {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxUnavailable == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, n, true)
	if err != nil {
		return 0
	}
	return v
}

func allowsSurge(ds *appsv1.DaemonSet) bool { return surgeCount(ds, 1) > 0 }

// Pod states.

func podReady(pod *corev1.Pod) bool {
	c := readyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// podAvailable reports whether the pod has been ready for minReadySeconds.
func podAvailable(pod *corev1.Pod, minReadySeconds int32, now metav1.Time) bool {
	c := readyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	since := c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
	return !c.LastTransitionTime.IsZero() && since.Before(now.Time)
}

func podTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
}

// sortOldestFirst orders pods bound first, then by creation, then name.
func sortOldestFirst(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName != "") != (b.Spec.NodeName != "") {
			return a.Spec.NodeName != ""
		}
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.Name < b.Name
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	})
}

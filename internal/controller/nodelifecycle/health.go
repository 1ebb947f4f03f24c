package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Node condition reasons and messages the controller writes.
const (
	reasonStatusUnknown      = "NodeStatusUnknown"
	messageStatusUnknown     = "Kubelet stopped posting node status."
	reasonStatusNeverUpdated = "NodeStatusNeverUpdated"
	messageNeverUpdated      = "Kubelet never posted node status."
)

// monitoredConditions are set to Unknown when a node stops reporting;
// NetworkUnavailable is left alone, as upstream.
var monitoredConditions = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// nodeHealth is what the controller last saw of a node: its status, when
// it last saw the kubelet heartbeat (a changed Ready heartbeat or a renewed
// Lease) and the Lease.
type nodeHealth struct {
	status                   *corev1.NodeStatus
	probeTimestamp           time.Time
	readyTransitionTimestamp time.Time
	lease                    *coordinationv1.Lease
}

func getCondition(status *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	if status == nil {
		return nil
	}
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

func (c *Controller) getHealth(name string) *nodeHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[name]
	if h == nil {
		return nil
	}
	cp := *h
	return &cp
}

func (c *Controller) setHealth(name string, h *nodeHealth) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.health[name] = h
}

// monitorNodeHealth checks every node's heartbeats, marks the silent ones
// Unknown, queues them for NoExecute tainting (or untaints them), marks
// the pods of nodes that just stopped being Ready not Ready, and adapts the
// zones' tainting rates to their health.
func (c *Controller) monitorNodeHealth(ctx context.Context) error {
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return err
	}
	c.classifyNodes(ctx, nodes)
	zoneConditions := map[string][]*corev1.NodeCondition{}
	for _, n := range nodes {
		node := n.DeepCopy()
		var observed corev1.NodeCondition
		var current *corev1.NodeCondition
		for attempt := 0; ; attempt++ {
			observed, current, err = c.tryUpdateNodeHealth(ctx, node)
			if err == nil || attempt == nodeUpdateRetries-1 {
				break
			}
			name := node.Name
			if node, err = c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
				break
			}
		}
		if err != nil {
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				slog.Warn("updating a node's health failed; no pods will be evicted", "node", n.Name, "err", err)
			}
			continue
		}
		if _, excluded := node.Labels[labelNodeDisruptionExclusion]; !excluded {
			zone := zoneKey(node)
			zoneConditions[zone] = append(zoneConditions[zone], current)
		}
		if current == nil {
			continue
		}
		c.processTaintBaseEviction(ctx, node, &observed)
		if current.Status != corev1.ConditionTrue && observed.Status == corev1.ConditionTrue {
			c.recordNodeStatusChange(node, "NodeNotReady")
			for _, p := range c.podsOnNode(node.Name) {
				if err := c.markPodNotReady(ctx, p); err != nil {
					slog.Warn("marking a pod not Ready", "pod", podKey(p), "err", err)
					c.podQueue.AddRateLimited(podKey(p))
				}
			}
		}
	}
	c.handleDisruption(ctx, zoneConditions, nodes)
	return nil
}

// classifyNodes notices added and deleted nodes.
func (c *Controller) classifyNodes(ctx context.Context, nodes []*corev1.Node) {
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		seen[n.Name] = true
		c.mu.Lock()
		_, known := c.known[n.Name]
		if !known {
			c.known[n.Name] = n
		}
		c.mu.Unlock()
		c.addZone(zoneKey(n))
		if !known {
			c.recordNodeEvent(n, "RegisteredNode", fmt.Sprintf("Registered Node %s in Controller", n.Name))
			if err := c.markNodeAsReachable(ctx, n); err != nil {
				slog.Warn("removing NoExecute taints of a new node", "node", n.Name, "err", err)
			}
		}
	}
	c.mu.Lock()
	var deleted []*corev1.Node
	for name, n := range c.known {
		if !seen[name] {
			deleted = append(deleted, n)
			delete(c.known, name)
			delete(c.health, name)
			for _, t := range c.tainters {
				t.remove(name)
			}
		}
	}
	c.mu.Unlock()
	for _, n := range deleted {
		c.recordNodeEvent(n, "RemovingNode", fmt.Sprintf("Removing Node %s from Controller", n.Name))
	}
}

// tryUpdateNodeHealth updates the controller's view of the node and, when
// the node has not been heard of for its grace period, sets its
// conditions to Unknown. It returns the Ready condition as the node
// reported it and as it is now.
func (c *Controller) tryUpdateNodeHealth(ctx context.Context, node *corev1.Node) (corev1.NodeCondition, *corev1.NodeCondition, error) {
	now := c.clock.Now()
	h := c.getHealth(node.Name)
	defer func() { c.setHealth(node.Name, h) }()

	var observed corev1.NodeCondition
	current := getCondition(&node.Status, corev1.NodeReady)
	gracePeriod := c.cfg.NodeMonitorGracePeriod
	if current == nil {
		// The kubelet never posted a status: count from the node's
		// creation, with the startup grace period.
		observed = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: node.CreationTimestamp}
		gracePeriod = c.cfg.NodeStartupGracePeriod
		if h != nil {
			h.status = &node.Status
		} else {
			h = &nodeHealth{status: &node.Status, probeTimestamp: node.CreationTimestamp.Time, readyTransitionTimestamp: node.CreationTimestamp.Time}
		}
	} else {
		observed = *current
	}
	var saved *corev1.NodeCondition
	var savedLease *coordinationv1.Lease
	if h != nil {
		saved = getCondition(h.status, corev1.NodeReady)
		savedLease = h.lease
	}
	switch {
	case h == nil:
		h = &nodeHealth{status: &node.Status, probeTimestamp: now, readyTransitionTimestamp: now}
	case saved == nil && current != nil, saved != nil && current == nil:
		h = &nodeHealth{status: &node.Status, probeTimestamp: now, readyTransitionTimestamp: now}
	case saved != nil && current != nil && !saved.LastHeartbeatTime.Equal(&current.LastHeartbeatTime):
		transition := h.readyTransitionTimestamp
		if !saved.LastTransitionTime.Equal(&current.LastTransitionTime) {
			transition = now
		}
		h = &nodeHealth{status: &node.Status, probeTimestamp: now, readyTransitionTimestamp: transition, lease: h.lease}
	}
	// A renewed Lease is a heartbeat too.
	lease, _ := c.leaseLister.Leases(corev1.NamespaceNodeLease).Get(node.Name)
	if lease != nil && lease.Spec.RenewTime != nil &&
		(savedLease == nil || savedLease.Spec.RenewTime == nil || savedLease.Spec.RenewTime.Before(lease.Spec.RenewTime)) {
		h.lease = lease
		h.probeTimestamp = now
	}

	if !now.After(h.probeTimestamp.Add(gracePeriod)) {
		return observed, current, nil
	}
	// Not heard of for the grace period: every monitored condition is
	// Unknown.
	stamp := metav1.NewTime(now)
	for _, t := range monitoredConditions {
		cond := getCondition(&node.Status, t)
		if cond == nil {
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: reasonStatusNeverUpdated, Message: messageNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: stamp,
			})
			continue
		}
		if cond.Status != corev1.ConditionUnknown {
			cond.Status, cond.Reason, cond.Message = corev1.ConditionUnknown, reasonStatusUnknown, messageStatusUnknown
			cond.LastTransitionTime = stamp
		}
	}
	current = getCondition(&node.Status, corev1.NodeReady)
	if apiequality.Semantic.DeepEqual(current, &observed) {
		return observed, current, nil
	}
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return observed, current, err
	}
	slog.Info("node stopped posting its status; marked Unknown", "node", node.Name,
		"silentFor", now.Sub(h.probeTimestamp).Round(time.Millisecond).String())
	h = &nodeHealth{status: &node.Status, probeTimestamp: h.probeTimestamp, readyTransitionTimestamp: now, lease: lease}
	return observed, current, nil
}

// processPod marks a pod on a not Ready node not Ready, and evicts it from
// a node with NoExecute taints it does not tolerate (long enough).
func (c *Controller) processPod(ctx context.Context, key string) error {
	ns, name, err := splitKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetEviction(key)
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return nil
	}
	if h := c.getHealth(pod.Spec.NodeName); h != nil {
		if ready := getCondition(h.status, corev1.NodeReady); ready != nil && ready.Status != corev1.ConditionTrue {
			if err := c.markPodNotReady(ctx, pod); err != nil {
				return err
			}
		}
	}
	return c.processPodTaints(ctx, key, pod)
}

// markPodNotReady sets the pod's Ready condition False, as
// MarkPodsNotReady does for the pods of a node that stopped being Ready.
func (c *Controller) markPodNotReady(ctx context.Context, pod *corev1.Pod) error {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	for i, cond := range pod.Status.Conditions {
		if cond.Type != corev1.PodReady {
			continue
		}
		if cond.Status == corev1.ConditionFalse {
			return nil
		}
		up := pod.DeepCopy()
		up.Status.Conditions[i].Status = corev1.ConditionFalse
		up.Status.Conditions[i].LastTransitionTime = metav1.NewTime(c.clock.Now())
		if _, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
		c.recorder.Event(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
		return nil
	}
	return nil
}

func (c *Controller) recordNodeStatusChange(node *corev1.Node, status string) {
	c.recordNodeEvent(node, status, fmt.Sprintf("Node %s status is now: %s", node.Name, status))
}

func (c *Controller) recordNodeEvent(node *corev1.Node, reason, message string) {
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Namespace: ""}
	c.recorder.Event(ref, corev1.EventTypeNormal, reason, message)
}

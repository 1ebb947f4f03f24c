package nodelifecycle

import (
	"context"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/flowcontrol"
)

// zoneState is the health of a zone, as upstream's.
type zoneState string

const (
	stateInitial           zoneState = "Initial"
	stateNormal            zoneState = "Normal"
	stateFullDisruption    zoneState = "FullDisruption"
	statePartialDisruption zoneState = "PartialDisruption"
)

// zoneKey is the node's region and zone, as upstream's GetZoneKey.
func zoneKey(node *corev1.Node) string {
	l := node.Labels
	region := l[corev1.LabelTopologyRegion]
	if region == "" {
		region = l[corev1.LabelFailureDomainBetaRegion]
	}
	zone := l[corev1.LabelTopologyZone]
	if zone == "" {
		zone = l[corev1.LabelFailureDomainBetaZone]
	}
	if region == "" && zone == "" {
		return ""
	}
	return region + ":\x00:" + zone
}

// tainter is a zone's queue of nodes waiting for a NoExecute taint,
// drained at the zone's rate. A node stays a member once tainted, so that
// later passes do not queue it again, until remove (it is Ready again, or
// lost the taint). It is guarded by Controller.mu.
type tainter struct {
	limiter flowcontrol.PassiveRateLimiter
	queue   []string
	members map[string]bool
}

func (c *Controller) newLimiter(qps float32) flowcontrol.PassiveRateLimiter {
	if qps <= 0 {
		return neverLimiter{}
	}
	return flowcontrol.NewTokenBucketPassiveRateLimiterWithClock(qps, 1, c.clock)
}

// add queues a node that is not a member.
func (t *tainter) add(name string) {
	if t.members[name] {
		return
	}
	t.members[name] = true
	t.queue = append(t.queue, name)
}

// requeue puts back a member whose tainting failed.
func (t *tainter) requeue(name string) {
	if t.members[name] && !slices.Contains(t.queue, name) {
		t.queue = append(t.queue, name)
	}
}

func (t *tainter) remove(name string) {
	delete(t.members, name)
	t.queue = slices.DeleteFunc(t.queue, func(n string) bool { return n == name })
}

// next pops the first queued node when the rate allows; it stays a member.
func (t *tainter) next() (string, bool) {
	if len(t.queue) == 0 || !t.limiter.TryAccept() {
		return "", false
	}
	name := t.queue[0]
	t.queue = t.queue[1:]
	return name, true
}

// neverLimiter stops tainting.
type neverLimiter struct{}

func (neverLimiter) TryAccept() bool { return false }
func (neverLimiter) Stop()           {}
func (neverLimiter) QPS() float32    { return 0 }

// addZone starts tracking a zone.
func (c *Controller) addZone(zone string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tainters[zone]; !ok {
		c.zoneStates[zone] = stateInitial
		c.tainters[zone] = &tainter{limiter: c.newLimiter(c.cfg.NodeEvictionRate), members: map[string]bool{}}
	}
}

// computeZoneState returns how many nodes of a zone are not Ready and the
// zone's state: fully disrupted when none is Ready, partially when at
// least 3 and UnhealthyZoneThreshold of them are not.
func (c *Controller) computeZoneState(conds []*corev1.NodeCondition) (int, zoneState) {
	ready, notReady := 0, 0
	for _, cond := range conds {
		if cond != nil && cond.Status == corev1.ConditionTrue {
			ready++
		} else {
			notReady++
		}
	}
	switch {
	case ready == 0 && notReady > 0:
		return notReady, stateFullDisruption
	case notReady > 2 && float32(notReady)/float32(notReady+ready) >= c.cfg.UnhealthyZoneThreshold:
		return notReady, statePartialDisruption
	default:
		return notReady, stateNormal
	}
}

// setLimiter sets the zone's tainting rate for its state; c.mu is held.
func (c *Controller) setLimiter(zone string, size int, state zoneState) {
	t := c.tainters[zone]
	if t == nil {
		return
	}
	qps := c.cfg.NodeEvictionRate
	if state == statePartialDisruption {
		qps = 0
		if size > c.cfg.LargeClusterSizeThreshold {
			qps = c.cfg.SecondaryNodeEvictionRate
		}
	}
	t.limiter = c.newLimiter(qps)
}

// handleDisruption adapts the zones' tainting rates to their new states.
// When every zone is fully disrupted (the control plane has probably lost
// the nodes, not the nodes their workloads) NoExecute taints are removed
// and tainting stops.
func (c *Controller) handleDisruption(ctx context.Context, zoneConditions map[string][]*corev1.NodeCondition, nodes []*corev1.Node) {
	newStates := map[string]zoneState{}
	allAreFullyDisrupted := true
	c.mu.Lock()
	for zone, conds := range zoneConditions {
		_, state := c.computeZoneState(conds)
		if state != stateFullDisruption {
			allAreFullyDisrupted = false
		}
		newStates[zone] = state
		if _, ok := c.zoneStates[zone]; !ok {
			c.zoneStates[zone] = stateInitial
		}
	}
	allWereFullyDisrupted := true
	for zone, state := range c.zoneStates {
		if _, ok := zoneConditions[zone]; !ok {
			delete(c.zoneStates, zone)
			continue
		}
		if state != stateFullDisruption {
			allWereFullyDisrupted = false
		}
	}
	c.mu.Unlock()
	if allAreFullyDisrupted && allWereFullyDisrupted {
		return
	}
	switch {
	case allAreFullyDisrupted:
		slog.Info("every node is not Ready: entering master disruption mode (no NoExecute taints, no evictions)")
		for _, n := range nodes {
			if err := c.markNodeAsReachable(ctx, n); err != nil {
				slog.Warn("removing a node's NoExecute taints", "node", n.Name, "err", err)
			}
		}
		c.mu.Lock()
		for zone := range c.zoneStates {
			if t := c.tainters[zone]; t != nil {
				t.limiter = neverLimiter{}
			}
			c.zoneStates[zone] = stateFullDisruption
		}
		c.mu.Unlock()
	case allWereFullyDisrupted:
		slog.Info("some nodes are Ready: exiting master disruption mode")
		now := c.clock.Now()
		c.mu.Lock()
		for _, n := range nodes {
			if h := c.health[n.Name]; h != nil {
				h.probeTimestamp, h.readyTransitionTimestamp = now, now
			}
		}
		for zone := range c.zoneStates {
			c.setLimiter(zone, len(zoneConditions[zone]), newStates[zone])
			c.zoneStates[zone] = newStates[zone]
		}
		c.mu.Unlock()
	default:
		c.mu.Lock()
		for zone, state := range c.zoneStates {
			if newStates[zone] == state {
				continue
			}
			slog.Info("zone changed state", "zone", zone, "state", string(newStates[zone]))
			c.setLimiter(zone, len(zoneConditions[zone]), newStates[zone])
			c.zoneStates[zone] = newStates[zone]
		}
		c.mu.Unlock()
	}
}

package scheduler

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// QueuedPodInfo is a pending pod with its queueing history.
type QueuedPodInfo struct {
	*framework.PodInfo
	key string
	// Timestamp is when the pod was last added or failed.
	Timestamp time.Time
	// Attempts counts scheduling attempts.
	Attempts int
	// InitialAttemptTimestamp is when the pod was first popped.
	InitialAttemptTimestamp time.Time
	// UnschedulablePlugins rejected the pod in its last attempt; empty
	// after an error, which any event retries.
	UnschedulablePlugins sets.Set[string]
}

// Queue holds the pods waiting to be scheduled: activeQ, ordered by
// priority then arrival; backoffQ, pods waiting out their backoff after a
// failure; and the unschedulable pods, moved back when a cluster event may
// make them schedulable or after maxInUnschedulable.
type Queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	active *keyedHeap
	// backoff orders by backoff expiry.
	backoff       *keyedHeap
	unschedulable map[string]*QueuedPodInfo
	inFlight      map[string]bool
	// schedulingCycle counts pops; moveRequestCycle is the cycle of the
	// last move: a pod failing in an older cycle may have missed the event
	// and goes to backoffQ instead of the unschedulable pods.
	schedulingCycle, moveRequestCycle int64
	closed                            bool

	initialBackoff, maxBackoff, maxInUnschedulable time.Duration
	// events are the cluster events each plugin registered.
	events map[string][]framework.ClusterEvent
	now    func() time.Time

	nominator *nominator
}

// QueueOptions tune the queue.
type QueueOptions struct {
	InitialBackoff, MaxBackoff, MaxInUnschedulable time.Duration
	// Events are the cluster events each plugin registered.
	Events map[string][]framework.ClusterEvent
	Now    func() time.Time
}

// NewQueue returns an empty queue; zero options are upstream's defaults
// (1s and 10s backoff, 5 minutes at most unschedulable).
func NewQueue(o QueueOptions) *Queue {
	if o.InitialBackoff == 0 {
		o.InitialBackoff = time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxInUnschedulable == 0 {
		o.MaxInUnschedulable = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	q := &Queue{
		unschedulable:      map[string]*QueuedPodInfo{},
		inFlight:           map[string]bool{},
		initialBackoff:     o.InitialBackoff,
		maxBackoff:         o.MaxBackoff,
		maxInUnschedulable: o.MaxInUnschedulable,
		events:             o.Events,
		now:                o.Now,
		nominator:          newNominator(),
	}
	q.cond = sync.NewCond(&q.mu)
	q.active = newKeyedHeap(func(a, b *QueuedPodInfo) bool {
		pa, pb := corev1helpers.PodPriority(a.Pod), corev1helpers.PodPriority(b.Pod)
		return pa > pb || pa == pb && a.Timestamp.Before(b.Timestamp)
	})
	q.backoff = newKeyedHeap(func(a, b *QueuedPodInfo) bool {
		return q.backoffExpiry(a).Before(q.backoffExpiry(b))
	})
	return q
}

func podKey(pod *corev1.Pod) string { return string(pod.UID) }

// backoffDuration doubles from the initial backoff per attempt, up to the
// maximum.
func (q *Queue) backoffDuration(p *QueuedPodInfo) time.Duration {
	d := q.initialBackoff
	for i := 1; i < p.Attempts; i++ {
		if d > q.maxBackoff-d {
			return q.maxBackoff
		}
		d += d
	}
	return d
}

func (q *Queue) backoffExpiry(p *QueuedPodInfo) time.Time {
	return p.Timestamp.Add(q.backoffDuration(p))
}

func (q *Queue) isBackingOff(p *QueuedPodInfo) bool {
	return p.Attempts > 0 && q.backoffExpiry(p).After(q.now())
}

// Add queues a new pending pod in activeQ.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(pod)
	p := q.lookupLocked(key)
	if p == nil {
		p = &QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), key: key, Timestamp: q.now()}
	} else {
		q.removeLocked(key)
		p.Update(pod)
	}
	q.active.add(p)
	q.nominator.add(pod, "")
	q.cond.Broadcast()
}

func (q *Queue) lookupLocked(key string) *QueuedPodInfo {
	if p, ok := q.active.get(key); ok {
		return p
	}
	if p, ok := q.backoff.get(key); ok {
		return p
	}
	return q.unschedulable[key]
}

func (q *Queue) removeLocked(key string) {
	q.active.remove(key)
	q.backoff.remove(key)
	delete(q.unschedulable, key)
}

// isPodUpdated reports whether an update changed more than the status and
// bookkeeping metadata: only such updates may make a pod schedulable.
func isPodUpdated(old, cur *corev1.Pod) bool {
	return !reflect.DeepEqual(old.Spec, cur.Spec) || !reflect.DeepEqual(old.Labels, cur.Labels) ||
		!reflect.DeepEqual(old.Annotations, cur.Annotations) || !reflect.DeepEqual(old.DeletionTimestamp, cur.DeletionTimestamp)
}

// Update takes a pending pod's new version. An unschedulable pod whose
// spec or labels changed is retried.
func (q *Queue) Update(old, pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := podKey(pod)
	q.nominator.update(old, pod)
	if p, ok := q.active.get(key); ok {
		p.Update(pod)
		q.active.add(p)
		return
	}
	if p, ok := q.backoff.get(key); ok {
		p.Update(pod)
		q.backoff.add(p)
		return
	}
	if p, ok := q.unschedulable[key]; ok {
		p.Update(pod)
		if old != nil && isPodUpdated(old, pod) {
			q.moveLocked(p)
		}
		return
	}
	if q.inFlight[key] {
		if old != nil && isPodUpdated(old, pod) {
			q.moveRequestCycle = q.schedulingCycle
		}
		return
	}
	p := &QueuedPodInfo{PodInfo: framework.NewPodInfo(pod), key: key, Timestamp: q.now()}
	q.active.add(p)
	q.cond.Broadcast()
}

// Delete forgets a pod.
func (q *Queue) Delete(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.removeLocked(podKey(pod))
	q.nominator.delete(pod)
}

// Pop waits for a pod in activeQ and takes it; it returns nil once the
// queue is closed.
func (q *Queue) Pop() (*QueuedPodInfo, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, 0
	}
	p := q.active.pop()
	q.schedulingCycle++
	p.Attempts++
	if p.InitialAttemptTimestamp.IsZero() {
		p.InitialAttemptTimestamp = q.now()
	}
	q.inFlight[p.key] = true
	return p, q.schedulingCycle
}

// Done marks a popped pod's attempt finished.
func (q *Queue) Done(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, podKey(pod))
}

// AddUnschedulableIfNotPresent puts back a pod that failed in cycle: to
// backoffQ after an error or when a cluster event came during its
// attempt, else among the unschedulable pods.
func (q *Queue) AddUnschedulableIfNotPresent(p *QueuedPodInfo, cycle int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, p.key)
	if q.lookupLocked(p.key) != nil {
		return
	}
	p.Timestamp = q.now()
	if len(p.UnschedulablePlugins) == 0 || q.moveRequestCycle >= cycle {
		q.backoff.add(p)
		return
	}
	q.unschedulable[p.key] = p
}

// moveLocked moves an unschedulable pod to backoffQ or activeQ.
func (q *Queue) moveLocked(p *QueuedPodInfo) {
	delete(q.unschedulable, p.key)
	if q.isBackingOff(p) {
		q.backoff.add(p)
		return
	}
	q.active.add(p)
	q.cond.Broadcast()
}

// matches reports whether event may make p schedulable: it has no
// rejecting plugin, or one of them registered the event.
func (q *Queue) matches(p *QueuedPodInfo, event framework.ClusterEvent) bool {
	if event.Resource == framework.WildCard || len(p.UnschedulablePlugins) == 0 {
		return true
	}
	for plugin := range p.UnschedulablePlugins {
		for _, registered := range q.events[plugin] {
			if registered.Match(event) {
				return true
			}
		}
	}
	return false
}

// MoveAllToActiveOrBackoffQueue retries the unschedulable pods the event
// may help.
func (q *Queue) MoveAllToActiveOrBackoffQueue(event framework.ClusterEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.unschedulable {
		if q.matches(p, event) {
			q.moveLocked(p)
		}
	}
	q.moveRequestCycle = q.schedulingCycle
}

// flushBackoffCompleted moves pods whose backoff ended to activeQ.
func (q *Queue) flushBackoffCompleted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	moved := false
	for p := q.backoff.peek(); p != nil && !q.backoffExpiry(p).After(now); p = q.backoff.peek() {
		q.backoff.pop()
		q.active.add(p)
		moved = true
	}
	if moved {
		q.cond.Broadcast()
	}
}

// flushUnschedulableLeftover retries pods unschedulable for too long.
func (q *Queue) flushUnschedulableLeftover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, p := range q.unschedulable {
		if now.Sub(p.Timestamp) > q.maxInUnschedulable {
			q.moveLocked(p)
		}
	}
}

// Run flushes backoffQ and the leftover unschedulable pods until ctx is
// done, then closes the queue.
func (q *Queue) Run(ctx context.Context) {
	backoff := time.NewTicker(100 * time.Millisecond)
	leftover := time.NewTicker(30 * time.Second)
	defer backoff.Stop()
	defer leftover.Stop()
	for {
		select {
		case <-ctx.Done():
			q.Close()
			return
		case <-backoff.C:
			q.flushBackoffCompleted()
		case <-leftover.C:
			q.flushUnschedulableLeftover()
		}
	}
}

// Close wakes Pop, which then returns nil.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Lengths reports the sizes of activeQ, backoffQ and the unschedulable
// pods.
func (q *Queue) Lengths() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// AddNominatedPod records that pod waits for nodeName (preemption).
func (q *Queue) AddNominatedPod(pod *corev1.Pod, nodeName string) { q.nominator.add(pod, nodeName) }

// DeleteNominatedPodIfExists forgets a pod's nomination.
func (q *Queue) DeleteNominatedPodIfExists(pod *corev1.Pod) { q.nominator.delete(pod) }

// NominatedPodsForNode lists the pods nominated to a node.
func (q *Queue) NominatedPodsForNode(nodeName string) []*framework.PodInfo {
	return q.nominator.forNode(nodeName)
}

// nominator remembers the pods nominated to nodes by preemption, so that
// other pods do not take the room made for them.
type nominator struct {
	// count is the number of nominated pods, read without the lock so
	// that filtering nodes costs nothing while nobody is nominated.
	count  atomic.Int64
	mu     sync.RWMutex
	byNode map[string][]*framework.PodInfo
	byUID  map[types.UID]string
}

func newNominator() *nominator {
	return &nominator{byNode: map[string][]*framework.PodInfo{}, byUID: map[types.UID]string{}}
}

// add nominates pod to nodeName, or to its status.nominatedNodeName when
// nodeName is empty.
func (n *nominator) add(pod *corev1.Pod, nodeName string) {
	if nodeName == "" && pod.Status.NominatedNodeName == "" {
		if n.has(pod) {
			n.delete(pod)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addLocked(pod, nodeName)
}

func (n *nominator) has(pod *corev1.Pod) bool {
	if n.count.Load() == 0 {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	_, ok := n.byUID[pod.UID]
	return ok
}

func (n *nominator) addLocked(pod *corev1.Pod, nodeName string) {
	n.deleteLocked(pod)
	if nodeName == "" {
		nodeName = pod.Status.NominatedNodeName
	}
	if nodeName == "" || pod.Spec.NodeName != "" {
		return
	}
	n.byUID[pod.UID] = nodeName
	n.byNode[nodeName] = append(n.byNode[nodeName], framework.NewPodInfo(pod))
	n.count.Add(1)
}

func (n *nominator) delete(pod *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deleteLocked(pod)
}

func (n *nominator) deleteLocked(pod *corev1.Pod) {
	node, ok := n.byUID[pod.UID]
	if !ok {
		return
	}
	delete(n.byUID, pod.UID)
	n.count.Add(-1)
	list := n.byNode[node]
	for i, pi := range list {
		if pi.Pod.UID == pod.UID {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.byNode, node)
	} else {
		n.byNode[node] = list
	}
}

// update follows a pod's new version; a nomination made in memory stays
// while the status does not carry it yet.
func (n *nominator) update(old, pod *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node := ""
	if (old == nil || old.Status.NominatedNodeName == "") && pod.Status.NominatedNodeName == "" {
		node = n.byUID[pod.UID]
	}
	if _, ok := n.byUID[pod.UID]; !ok && pod.Status.NominatedNodeName == "" {
		return
	}
	n.addLocked(pod, node)
}

// any reports whether any pod is nominated.
func (n *nominator) any() bool { return n.count.Load() > 0 }

func (n *nominator) forNode(nodeName string) []*framework.PodInfo {
	if n.count.Load() == 0 {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if len(n.byNode[nodeName]) == 0 {
		return nil
	}
	return append([]*framework.PodInfo(nil), n.byNode[nodeName]...)
}

package scheduler

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// nodeItem is one node's info in the cache's list, most recently changed
// first, so that a snapshot copies only what changed since it was taken.
type nodeItem struct {
	info       *framework.NodeInfo
	prev, next *nodeItem
}

type podState struct {
	pod *corev1.Pod
	// assumed: placed by this scheduler, not yet seen bound.
	assumed bool
}

// Cache is the scheduler's view of the cluster: nodes and the pods
// assigned or assumed to them. It is safe for concurrent use.
type Cache struct {
	mu    sync.RWMutex
	nodes map[string]*nodeItem
	head  *nodeItem
	// order is the node names with a node object, in the order they came.
	order []string
	pods  map[string]*podState
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{nodes: map[string]*nodeItem{}, pods: map[string]*podState{}}
}

func (c *Cache) moveToHead(it *nodeItem) {
	if c.head == it {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	it.prev = nil
	it.next = c.head
	if c.head != nil {
		c.head.prev = it
	}
	c.head = it
}

func (c *Cache) unlink(it *nodeItem) {
	if it.prev != nil {
		it.prev.next = it.next
	} else if c.head == it {
		c.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	it.prev, it.next = nil, nil
}

func (c *Cache) item(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{info: framework.NewNodeInfo()}
		c.nodes[name] = it
	}
	return it
}

func (c *Cache) addPodLocked(pod *corev1.Pod, assumed bool) {
	it := c.item(pod.Spec.NodeName)
	it.info.AddPod(pod)
	c.moveToHead(it)
	c.pods[framework.PodKey(pod)] = &podState{pod: pod, assumed: assumed}
}

func (c *Cache) removePodLocked(pod *corev1.Pod) error {
	key := framework.PodKey(pod)
	ps, ok := c.pods[key]
	if !ok {
		return nil
	}
	delete(c.pods, key)
	it, ok := c.nodes[ps.pod.Spec.NodeName]
	if !ok {
		return fmt.Errorf("node %q of pod %s/%s is not in the cache", ps.pod.Spec.NodeName, pod.Namespace, pod.Name)
	}
	if err := it.info.RemovePod(ps.pod); err != nil {
		return err
	}
	if it.info.Node() == nil && len(it.info.Pods) == 0 {
		c.unlink(it)
		delete(c.nodes, ps.pod.Spec.NodeName)
	} else {
		c.moveToHead(it)
	}
	return nil
}

// AssumePod places a pod on pod.Spec.NodeName before it is bound.
func (c *Cache) AssumePod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[framework.PodKey(pod)]; ok {
		return fmt.Errorf("pod %s/%s is already in the cache", pod.Namespace, pod.Name)
	}
	c.addPodLocked(pod, true)
	return nil
}

// ForgetPod undoes AssumePod after a failed binding.
func (c *Cache) ForgetPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[framework.PodKey(pod)]; ok && ps.assumed {
		return c.removePodLocked(pod)
	}
	return nil
}

// IsAssumed reports whether the pod is assumed and not yet seen bound.
func (c *Cache) IsAssumed(pod *corev1.Pod) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.pods[framework.PodKey(pod)]
	return ok && ps.assumed
}

// AddPod adds an assigned pod seen by the informer; an assumed pod is
// confirmed (and moved if it was bound elsewhere).
func (c *Cache) AddPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[framework.PodKey(pod)]; ok {
		// Confirmed, or seen again: replace with the informer's object.
		if err := c.removePodLocked(ps.pod); err != nil {
			return err
		}
	}
	c.addPodLocked(pod, false)
	return nil
}

// UpdatePod replaces an assigned pod.
func (c *Cache) UpdatePod(_, pod *corev1.Pod) error { return c.AddPod(pod) }

// RemovePod removes an assigned pod.
func (c *Cache) RemovePod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removePodLocked(pod)
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addNodeLocked(node)
}

func (c *Cache) addNodeLocked(node *corev1.Node) {
	it := c.item(node.Name)
	if it.info.Node() == nil {
		c.order = append(c.order, node.Name)
	}
	it.info.SetNode(node)
	c.moveToHead(it)
}

// UpdateNode replaces a node; when nothing the plugins read changed (a
// heartbeat), the snapshot is not made to copy it again.
func (c *Cache) UpdateNode(old, node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if ok && it.info.Node() != nil && old != nil && nodeChange(old, node) == 0 {
		return
	}
	c.addNodeLocked(node)
}

// RemoveNode removes a node; its pods stay until they are removed.
func (c *Cache) RemoveNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if !ok {
		return
	}
	for i, n := range c.order {
		if n == node.Name {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	if len(it.info.Pods) == 0 {
		c.unlink(it)
		delete(c.nodes, node.Name)
		return
	}
	it.info.RemoveNode()
	c.moveToHead(it)
}

// NodeCount is the number of nodes with a node object.
func (c *Cache) NodeCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.order)
}

// PodCount is the number of pods assigned or assumed.
func (c *Cache) PodCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pods)
}

// UpdateSnapshot brings s up to date, copying only the node infos changed
// since it was last updated.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rebuild := false
	relist := false
	for it := c.head; it != nil && it.info.Generation > s.generation; it = it.next {
		node := it.info.Node()
		if node == nil {
			continue
		}
		existing, ok := s.nodes[node.Name]
		if !ok {
			rebuild = true
			existing = &framework.NodeInfo{}
			s.nodes[node.Name] = existing
		}
		clone := it.info.Clone()
		if (len(existing.PodsWithAffinity) > 0) != (len(clone.PodsWithAffinity) > 0) ||
			(len(existing.PodsWithRequiredAntiAffinity) > 0) != (len(clone.PodsWithRequiredAntiAffinity) > 0) {
			relist = true
		}
		*existing = *clone
	}
	if c.head != nil {
		s.generation = c.head.info.Generation
	}
	if len(s.nodes) > len(c.order) {
		for name := range s.nodes {
			if it, ok := c.nodes[name]; !ok || it.info.Node() == nil {
				delete(s.nodes, name)
			}
		}
		rebuild = true
	}
	if rebuild || len(s.list) != len(c.order) {
		s.list = s.list[:0]
		for _, name := range c.order {
			if n, ok := s.nodes[name]; ok {
				s.list = append(s.list, n)
			}
		}
		relist = true
	}
	if relist {
		s.withAffinity, s.withRequiredAntiAffinity = s.withAffinity[:0], s.withRequiredAntiAffinity[:0]
		for _, n := range s.list {
			if len(n.PodsWithAffinity) > 0 {
				s.withAffinity = append(s.withAffinity, n)
			}
			if len(n.PodsWithRequiredAntiAffinity) > 0 {
				s.withRequiredAntiAffinity = append(s.withRequiredAntiAffinity, n)
			}
		}
	}
}

// Snapshot is the cache as of the start of a scheduling cycle; plugins
// read it without locks.
type Snapshot struct {
	nodes                    map[string]*framework.NodeInfo
	list                     []*framework.NodeInfo
	withAffinity             []*framework.NodeInfo
	withRequiredAntiAffinity []*framework.NodeInfo
	generation               int64
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot { return &Snapshot{nodes: map[string]*framework.NodeInfo{}} }

// NodeInfos returns the snapshot itself.
func (s *Snapshot) NodeInfos() framework.NodeInfoLister { return s }

// List lists the nodes.
func (s *Snapshot) List() []*framework.NodeInfo { return s.list }

// HavePodsWithAffinityList lists nodes with pods having affinity terms.
func (s *Snapshot) HavePodsWithAffinityList() []*framework.NodeInfo { return s.withAffinity }

// HavePodsWithRequiredAntiAffinityList lists nodes with pods having
// required anti-affinity terms.
func (s *Snapshot) HavePodsWithRequiredAntiAffinityList() []*framework.NodeInfo {
	return s.withRequiredAntiAffinity
}

// Get returns a node's info.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, error) {
	if n, ok := s.nodes[name]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("nodeinfo not found for node name %q", name)
}

// NumNodes is the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.list) }

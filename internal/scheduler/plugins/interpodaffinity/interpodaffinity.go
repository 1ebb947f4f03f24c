// Package interpodaffinity is the InterPodAffinity plugin: required pod
// affinity and anti-affinity of the incoming pod and required
// anti-affinity of the pods already placed (Filter), and the preferred
// terms of both (Score).
package interpodaffinity

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "InterPodAffinity"

// Upstream's reasons.
const (
	ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
	ErrReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
)

// DefaultHardPodAffinityWeight is the score weight of existing pods'
// required affinity terms matching the incoming pod.
const DefaultHardPodAffinityWeight int32 = 1

// InterPodAffinity is the plugin.
type InterPodAffinity struct {
	handle     framework.Handle
	namespaces corelisters.NamespaceLister
	hardWeight int32
}

var (
	_ framework.PreFilterPlugin   = (*InterPodAffinity)(nil)
	_ framework.FilterPlugin      = (*InterPodAffinity)(nil)
	_ framework.PreScorePlugin    = (*InterPodAffinity)(nil)
	_ framework.ScorePlugin       = (*InterPodAffinity)(nil)
	_ framework.EnqueueExtensions = (*InterPodAffinity)(nil)
)

// New returns the plugin. Namespace labels, for terms with a
// namespaceSelector, come from the handle's informers when it has them.
func New(h framework.Handle) *InterPodAffinity {
	p := &InterPodAffinity{handle: h, hardWeight: DefaultHardPodAffinityWeight}
	if f := h.SharedInformerFactory(); f != nil {
		p.namespaces = f.Core().V1().Namespaces().Lister()
	}
	return p
}

// Name returns the plugin's name.
func (*InterPodAffinity) Name() string { return Name }

// EventsToRegister: pods coming, going or relabelled; nodes added or
// relabelled; namespaces relabelled.
func (*InterPodAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.Pod, ActionType: framework.Add | framework.Delete | framework.UpdatePodLabel},
		{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel | framework.UpdateNodeTaint},
		{Resource: framework.Namespace, ActionType: framework.Add | framework.UpdatePodLabel},
	}
}

func (p *InterPodAffinity) nsLabels(ns string) labels.Set {
	if p.namespaces == nil {
		return labels.Set{}
	}
	n, err := p.namespaces.Get(ns)
	if err != nil {
		return labels.Set{}
	}
	return n.Labels
}

// mergeNamespaceSelectors turns the namespaceSelector of the incoming
// pod's terms into namespace names, so matching needs no lookups.
func (p *InterPodAffinity) mergeNamespaceSelectors(terms []framework.AffinityTerm) {
	if p.namespaces == nil {
		return
	}
	for i := range terms {
		t := &terms[i]
		if t.NamespaceSelector == labels.Nothing() {
			continue
		}
		all, err := p.namespaces.List(t.NamespaceSelector)
		if err != nil {
			continue
		}
		t.Namespaces = t.Namespaces.Clone()
		for _, ns := range all {
			t.Namespaces.Insert(ns.Name)
		}
		t.NamespaceSelector = labels.Nothing()
	}
}

// topologyPair is a topology domain.
type topologyPair struct{ key, value string }

// topologyToCount counts matching pods per domain.
type topologyToCount map[topologyPair]int64

func (m topologyToCount) clone() topologyToCount {
	out := make(topologyToCount, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (m topologyToCount) update(node *corev1.Node, key string, delta int64) {
	if v, ok := node.Labels[key]; ok {
		pair := topologyPair{key, v}
		m[pair] += delta
		if m[pair] == 0 {
			delete(m, pair)
		}
	}
}

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

type preFilterState struct {
	// existingAntiAffinityCounts: domains with placed pods whose required
	// anti-affinity the incoming pod matches.
	existingAntiAffinityCounts topologyToCount
	// affinityCounts and antiAffinityCounts: domains with placed pods
	// matching the incoming pod's required terms.
	affinityCounts     topologyToCount
	antiAffinityCounts topologyToCount
	podInfo            *framework.PodInfo
	namespaceLabels    labels.Set
}

func (s *preFilterState) Clone() framework.StateData {
	return &preFilterState{
		existingAntiAffinityCounts: s.existingAntiAffinityCounts.clone(),
		affinityCounts:             s.affinityCounts.clone(),
		antiAffinityCounts:         s.antiAffinityCounts.clone(),
		podInfo:                    s.podInfo,
		namespaceLabels:            s.namespaceLabels,
	}
}

// matchesAll reports whether pod matches every term.
func matchesAll(terms []framework.AffinityTerm, pod *corev1.Pod, nsLabels labels.Set) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].Matches(pod, nsLabels) {
			return false
		}
	}
	return true
}

// updateWithPod adds (delta 1) or removes (-1) a placed pod's counts.
func (s *preFilterState) updateWithPod(placed *framework.PodInfo, node *corev1.Node, delta int64, placedNSLabels labels.Set) {
	if node == nil {
		return
	}
	incoming := s.podInfo
	for i := range placed.RequiredAntiAffinityTerms {
		t := &placed.RequiredAntiAffinityTerms[i]
		if t.Matches(incoming.Pod, s.namespaceLabels) {
			s.existingAntiAffinityCounts.update(node, t.TopologyKey, delta)
		}
	}
	if matchesAll(incoming.RequiredAffinityTerms, placed.Pod, placedNSLabels) {
		for i := range incoming.RequiredAffinityTerms {
			s.affinityCounts.update(node, incoming.RequiredAffinityTerms[i].TopologyKey, delta)
		}
	}
	for i := range incoming.RequiredAntiAffinityTerms {
		t := &incoming.RequiredAntiAffinityTerms[i]
		if t.Matches(placed.Pod, placedNSLabels) {
			s.antiAffinityCounts.update(node, t.TopologyKey, delta)
		}
	}
}

// PreFilter counts, per topology domain, the placed pods that matter to
// the incoming pod's required terms and the placed pods whose required
// anti-affinity the incoming pod matches. It is skipped when there are
// neither.
func (p *InterPodAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	pi := framework.PodInfoOf(state, pod)
	if pi.ParseError != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "invalid affinity terms: "+pi.ParseError.Error())
	}
	lister := p.handle.SnapshotSharedLister().NodeInfos()
	withAnti := lister.HavePodsWithRequiredAntiAffinityList()
	if len(pi.RequiredAffinityTerms) == 0 && len(pi.RequiredAntiAffinityTerms) == 0 && len(withAnti) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	// Resolve namespace selectors on copies: the PodInfo is shared.
	resolved := *pi
	resolved.RequiredAffinityTerms = append([]framework.AffinityTerm(nil), pi.RequiredAffinityTerms...)
	resolved.RequiredAntiAffinityTerms = append([]framework.AffinityTerm(nil), pi.RequiredAntiAffinityTerms...)
	pi = &resolved
	p.mergeNamespaceSelectors(pi.RequiredAffinityTerms)
	p.mergeNamespaceSelectors(pi.RequiredAntiAffinityTerms)
	s := &preFilterState{
		existingAntiAffinityCounts: topologyToCount{},
		affinityCounts:             topologyToCount{},
		antiAffinityCounts:         topologyToCount{},
		podInfo:                    pi,
		namespaceLabels:            p.nsLabels(pod.Namespace),
	}
	for _, n := range withAnti {
		for _, placed := range n.PodsWithRequiredAntiAffinity {
			for i := range placed.RequiredAntiAffinityTerms {
				t := &placed.RequiredAntiAffinityTerms[i]
				if t.Matches(pod, s.namespaceLabels) {
					s.existingAntiAffinityCounts.update(n.Node(), t.TopologyKey, 1)
				}
			}
		}
	}
	if len(pi.RequiredAffinityTerms) > 0 || len(pi.RequiredAntiAffinityTerms) > 0 {
		for _, n := range lister.List() {
			for _, placed := range n.Pods {
				if matchesAll(pi.RequiredAffinityTerms, placed.Pod, nil) {
					for i := range pi.RequiredAffinityTerms {
						s.affinityCounts.update(n.Node(), pi.RequiredAffinityTerms[i].TopologyKey, 1)
					}
				}
				for i := range pi.RequiredAntiAffinityTerms {
					t := &pi.RequiredAntiAffinityTerms[i]
					if t.Matches(placed.Pod, nil) {
						s.antiAffinityCounts.update(n.Node(), t.TopologyKey, 1)
					}
				}
			}
		}
	}
	state.Write(preFilterKey, s)
	return nil, nil
}

// PreFilterExtensions keeps the counts right when preemption removes pods
// and nominated pods are added.
func (p *InterPodAffinity) PreFilterExtensions() framework.PreFilterExtensions { return p }

// AddPod counts a pod added to a node.
func (p *InterPodAffinity) AddPod(_ context.Context, state *framework.CycleState, _ *corev1.Pod, added *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	d, err := state.Read(preFilterKey)
	if err != nil {
		return nil
	}
	d.(*preFilterState).updateWithPod(added, nodeInfo.Node(), 1, p.nsLabels(added.Pod.Namespace))
	return nil
}

// RemovePod uncounts a pod removed from a node.
func (p *InterPodAffinity) RemovePod(_ context.Context, state *framework.CycleState, _ *corev1.Pod, removed *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	d, err := state.Read(preFilterKey)
	if err != nil {
		return nil
	}
	d.(*preFilterState).updateWithPod(removed, nodeInfo.Node(), -1, p.nsLabels(removed.Pod.Namespace))
	return nil
}

// Filter checks the three rules on one node.
func (p *InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, _ *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	d, err := state.Read(preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s := d.(*preFilterState)
	node := nodeInfo.Node()
	if !s.satisfiesAffinity(node) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	}
	for i := range s.podInfo.RequiredAntiAffinityTerms {
		if v, ok := node.Labels[s.podInfo.RequiredAntiAffinityTerms[i].TopologyKey]; ok &&
			s.antiAffinityCounts[topologyPair{s.podInfo.RequiredAntiAffinityTerms[i].TopologyKey, v}] > 0 {
			return framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
		}
	}
	if len(s.existingAntiAffinityCounts) > 0 {
		for k, v := range node.Labels {
			if s.existingAntiAffinityCounts[topologyPair{k, v}] > 0 {
				return framework.NewStatus(framework.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
			}
		}
	}
	return nil
}

// satisfiesAffinity: every required affinity term has a matching pod in
// the node's domain; or, when no pod anywhere matches and the pod matches
// its own terms, the node merely has the topology keys (the first pod of a
// group).
func (s *preFilterState) satisfiesAffinity(node *corev1.Node) bool {
	terms := s.podInfo.RequiredAffinityTerms
	if len(terms) == 0 {
		return true
	}
	all := true
	for i := range terms {
		v, ok := node.Labels[terms[i].TopologyKey]
		if !ok || s.affinityCounts[topologyPair{terms[i].TopologyKey, v}] <= 0 {
			all = false
			break
		}
	}
	if all {
		return true
	}
	if len(s.affinityCounts) > 0 || !matchesAll(terms, s.podInfo.Pod, s.namespaceLabels) {
		return false
	}
	for i := range terms {
		if _, ok := node.Labels[terms[i].TopologyKey]; !ok {
			return false
		}
	}
	return true
}

// scoreState holds the weighted counts per domain for scoring.
type scoreState struct {
	scores map[string]map[string]int64 // topology key → value → score
}

func (s *scoreState) Clone() framework.StateData { return s }

// PreScore sums, per topology domain, the weights of preferred terms
// (and existing pods' required affinity at the hard weight) between the
// incoming pod and the placed ones. It is skipped when neither side has
// any.
func (p *InterPodAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	pi := framework.PodInfoOf(state, pod)
	lister := p.handle.SnapshotSharedLister().NodeInfos()
	hasPreferred := len(pi.PreferredAffinityTerms)+len(pi.PreferredAntiAffinityTerms) > 0
	nodes := lister.HavePodsWithAffinityList()
	if hasPreferred {
		nodes = lister.List()
	}
	if !hasPreferred && len(nodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	nsLabels := p.nsLabels(pod.Namespace)
	s := &scoreState{scores: map[string]map[string]int64{}}
	add := func(node *corev1.Node, key string, w int64) {
		v, ok := node.Labels[key]
		if !ok || w == 0 {
			return
		}
		if s.scores[key] == nil {
			s.scores[key] = map[string]int64{}
		}
		s.scores[key][v] += w
	}
	for _, n := range nodes {
		placedPods := n.PodsWithAffinity
		if hasPreferred {
			placedPods = n.Pods
		}
		for _, placed := range placedPods {
			placedNS := p.nsLabels(placed.Pod.Namespace)
			for _, t := range pi.PreferredAffinityTerms {
				if t.Matches(placed.Pod, placedNS) {
					add(n.Node(), t.TopologyKey, int64(t.Weight))
				}
			}
			for _, t := range pi.PreferredAntiAffinityTerms {
				if t.Matches(placed.Pod, placedNS) {
					add(n.Node(), t.TopologyKey, -int64(t.Weight))
				}
			}
			if p.hardWeight > 0 {
				for _, t := range placed.RequiredAffinityTerms {
					if t.Matches(pod, nsLabels) {
						add(n.Node(), t.TopologyKey, int64(p.hardWeight))
					}
				}
			}
			for _, t := range placed.PreferredAffinityTerms {
				if t.Matches(pod, nsLabels) {
					add(n.Node(), t.TopologyKey, int64(t.Weight))
				}
			}
			for _, t := range placed.PreferredAntiAffinityTerms {
				if t.Matches(pod, nsLabels) {
					add(n.Node(), t.TopologyKey, -int64(t.Weight))
				}
			}
		}
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score sums the node's domains' scores.
func (p *InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	d, err := state.Read(preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	var score int64
	for key, values := range d.(*scoreState).scores {
		if v, ok := nodeInfo.Node().Labels[key]; ok {
			score += values[v]
		}
	}
	return score, nil
}

// ScoreExtensions returns the normalization.
func (p *InterPodAffinity) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore maps [min, max] onto [0, 100].
func (p *InterPodAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	if len(scores) == 0 {
		return nil
	}
	lo, hi := scores[0].Score, scores[0].Score
	for _, s := range scores {
		lo, hi = min(lo, s.Score), max(hi, s.Score)
	}
	for i := range scores {
		if hi > lo {
			scores[i].Score = int64(float64(framework.MaxNodeScore) * float64(scores[i].Score-lo) / float64(hi-lo))
		} else {
			scores[i].Score = 0
		}
	}
	return nil
}

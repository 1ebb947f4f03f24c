// Package podtopologyspread is the PodTopologySpread plugin: a pod's
// topologySpreadConstraints with whenUnsatisfiable DoNotSchedule are hard
// (Filter: the skew of matching pods across domains stays within maxSkew)
// and those with ScheduleAnyway are preferences (Score).
//
// Upstream's system default constraints (for pods owned by Services and
// workloads that set none) are not applied.
package podtopologyspread

import (
	"context"
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/plugins/helper"
)

// Name is the plugin's name in configurations.
const Name = "PodTopologySpread"

// Upstream's reasons.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

// PodTopologySpread is the plugin.
type PodTopologySpread struct {
	handle framework.Handle
}

var (
	_ framework.PreFilterPlugin   = (*PodTopologySpread)(nil)
	_ framework.FilterPlugin      = (*PodTopologySpread)(nil)
	_ framework.PreScorePlugin    = (*PodTopologySpread)(nil)
	_ framework.ScorePlugin       = (*PodTopologySpread)(nil)
	_ framework.EnqueueExtensions = (*PodTopologySpread)(nil)
)

// New returns the plugin.
func New(h framework.Handle) *PodTopologySpread { return &PodTopologySpread{handle: h} }

// Name returns the plugin's name.
func (*PodTopologySpread) Name() string { return Name }

// EventsToRegister: pods coming, going or relabelled; nodes added,
// removed, relabelled or retainted.
func (*PodTopologySpread) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.Pod, ActionType: framework.Add | framework.Delete | framework.UpdatePodLabel},
		{Resource: framework.Node, ActionType: framework.Add | framework.Delete | framework.UpdateNodeLabel | framework.UpdateNodeTaint},
	}
}

// constraint is a parsed topology spread constraint.
type constraint struct {
	maxSkew     int32
	topologyKey string
	selector    labels.Selector
	minDomains  int32
	honorAffinity,
	honorTaints bool
}

func parseConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != action {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			return nil, err
		}
		for _, k := range c.MatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				r, err := labels.NewRequirement(k, selection.In, []string{v})
				if err != nil {
					return nil, err
				}
				sel = sel.Add(*r)
			}
		}
		pc := constraint{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, selector: sel, minDomains: 1,
			honorAffinity: true}
		if c.MinDomains != nil {
			pc.minDomains = *c.MinDomains
		}
		if c.NodeAffinityPolicy != nil {
			pc.honorAffinity = *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor
		}
		if c.NodeTaintsPolicy != nil {
			pc.honorTaints = *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor
		}
		out = append(out, pc)
	}
	return out, nil
}

// nodeCounts reports whether the node's pods count for c: the node has
// the key and passes the affinity and taints policies.
func (c *constraint) nodeCounts(pod *corev1.Pod, required nodeaffinity.RequiredNodeAffinity, node *corev1.Node) bool {
	if _, ok := node.Labels[c.topologyKey]; !ok {
		return false
	}
	if c.honorAffinity {
		if ok, _ := required.Match(node); !ok {
			return false
		}
	}
	if c.honorTaints {
		if _, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations, helper.DoNotScheduleTaints, false); untolerated {
			return false
		}
	}
	return true
}

// countMatching counts the pods on a node c selects, in the pod's
// namespace, not being deleted.
func countMatching(pods []*framework.PodInfo, sel labels.Selector, ns string) int64 {
	var n int64
	for _, p := range pods {
		if p.Pod.Namespace == ns && p.Pod.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Pod.Labels)) {
			n++
		}
	}
	return n
}

type topologyPair struct{ key, value string }

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

type preFilterState struct {
	constraints []constraint
	// counts of matching pods per domain, per constraint.
	counts []map[string]int64
	// minCounts is the smallest count over each constraint's domains.
	minCounts []int64
	required  nodeaffinity.RequiredNodeAffinity
}

func (s *preFilterState) Clone() framework.StateData {
	c := &preFilterState{constraints: s.constraints, required: s.required, minCounts: append([]int64(nil), s.minCounts...)}
	for _, m := range s.counts {
		cm := make(map[string]int64, len(m))
		for k, v := range m {
			cm[k] = v
		}
		c.counts = append(c.counts, cm)
	}
	return c
}

func (s *preFilterState) recomputeMin(i int) {
	lo := int64(math.MaxInt64)
	for _, v := range s.counts[i] {
		lo = min(lo, v)
	}
	if lo == math.MaxInt64 || int32(len(s.counts[i])) < s.constraints[i].minDomains {
		lo = 0
	}
	s.minCounts[i] = lo
}

// PreFilter counts, per DoNotSchedule constraint, the matching pods of
// every domain; it is skipped for pods without such constraints.
func (p *PodTopologySpread) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	cs, err := parseConstraints(pod, corev1.DoNotSchedule)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	s := &preFilterState{constraints: cs, counts: make([]map[string]int64, len(cs)), minCounts: make([]int64, len(cs)),
		required: nodeaffinity.GetRequiredNodeAffinity(pod)}
	for i := range cs {
		s.counts[i] = map[string]int64{}
	}
	for _, n := range nodes {
		node := n.Node()
		if !hasAllKeys(node, cs) {
			continue
		}
		for i := range cs {
			c := &cs[i]
			if !c.nodeCounts(pod, s.required, node) {
				continue
			}
			s.counts[i][node.Labels[c.topologyKey]] += countMatching(n.Pods, c.selector, pod.Namespace)
		}
	}
	for i := range cs {
		s.recomputeMin(i)
	}
	state.Write(preFilterKey, s)
	return nil, nil
}

func hasAllKeys(node *corev1.Node, cs []constraint) bool {
	for i := range cs {
		if _, ok := node.Labels[cs[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// PreFilterExtensions keeps the counts right when preemption removes pods
// and nominated pods are added.
func (p *PodTopologySpread) PreFilterExtensions() framework.PreFilterExtensions { return p }

func (p *PodTopologySpread) update(state *framework.CycleState, pod *corev1.Pod, other *framework.PodInfo, nodeInfo *framework.NodeInfo, delta int64) *framework.Status {
	d, err := state.Read(preFilterKey)
	if err != nil {
		return nil
	}
	s := d.(*preFilterState)
	node := nodeInfo.Node()
	if other.Pod.Namespace != pod.Namespace || !hasAllKeys(node, s.constraints) {
		return nil
	}
	for i := range s.constraints {
		c := &s.constraints[i]
		if !c.nodeCounts(pod, s.required, node) || !c.selector.Matches(labels.Set(other.Pod.Labels)) {
			continue
		}
		s.counts[i][node.Labels[c.topologyKey]] += delta
		s.recomputeMin(i)
	}
	return nil
}

// AddPod counts a pod added to a node.
func (p *PodTopologySpread) AddPod(_ context.Context, state *framework.CycleState, pod *corev1.Pod, added *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	return p.update(state, pod, added, nodeInfo, 1)
}

// RemovePod uncounts a pod removed from a node.
func (p *PodTopologySpread) RemovePod(_ context.Context, state *framework.CycleState, pod *corev1.Pod, removed *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	return p.update(state, pod, removed, nodeInfo, -1)
}

// Filter rejects a node where placing the pod would make a domain's count
// exceed the smallest one by more than maxSkew.
func (p *PodTopologySpread) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	d, err := state.Read(preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s := d.(*preFilterState)
	node := nodeInfo.Node()
	podLabels := labels.Set(pod.Labels)
	for i := range s.constraints {
		c := &s.constraints[i]
		value, ok := node.Labels[c.topologyKey]
		if !ok {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
		}
		var self int64
		if c.selector.Matches(podLabels) {
			self = 1
		}
		if s.counts[i][value]+self-s.minCounts[i] > int64(c.maxSkew) {
			return framework.NewStatus(framework.Unschedulable, ErrReasonConstraintsNotMatch)
		}
	}
	return nil
}

type scoreState struct {
	constraints []constraint
	counts      map[topologyPair]int64
	weights     []float64
	// ignored are nodes lacking a constraint's key: they score 0.
	ignored map[string]bool
}

func (s *scoreState) Clone() framework.StateData { return s }

// PreScore counts matching pods per domain for the ScheduleAnyway
// constraints over the feasible nodes' domains; it is skipped for pods
// without such constraints.
func (p *PodTopologySpread) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, filtered []*framework.NodeInfo) *framework.Status {
	cs, err := parseConstraints(pod, corev1.ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	s := &scoreState{constraints: cs, counts: map[topologyPair]int64{}, ignored: map[string]bool{}}
	domains := make([]map[string]bool, len(cs))
	for i := range domains {
		domains[i] = map[string]bool{}
	}
	for _, n := range filtered {
		node := n.Node()
		if !hasAllKeys(node, cs) {
			s.ignored[node.Name] = true
			continue
		}
		for i := range cs {
			domains[i][node.Labels[cs[i].topologyKey]] = true
			s.counts[topologyPair{cs[i].topologyKey, node.Labels[cs[i].topologyKey]}] = 0
		}
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	for _, n := range p.handle.SnapshotSharedLister().NodeInfos().List() {
		node := n.Node()
		if !hasAllKeys(node, cs) {
			continue
		}
		for i := range cs {
			c := &cs[i]
			pair := topologyPair{c.topologyKey, node.Labels[c.topologyKey]}
			if _, tracked := s.counts[pair]; !tracked || c.topologyKey == corev1.LabelHostname || !c.nodeCounts(pod, required, node) {
				continue
			}
			s.counts[pair] += countMatching(n.Pods, c.selector, pod.Namespace)
		}
	}
	for i := range cs {
		s.weights = append(s.weights, math.Log(float64(len(domains[i])+2)))
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score is higher for more crowded domains (normalized in reverse).
func (p *PodTopologySpread) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	d, err := state.Read(preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	s := d.(*scoreState)
	node := nodeInfo.Node()
	if s.ignored[node.Name] {
		return 0, nil
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := node.Labels[c.topologyKey]
		if !ok {
			continue
		}
		var cnt int64
		if c.topologyKey == corev1.LabelHostname {
			cnt = countMatching(nodeInfo.Pods, c.selector, pod.Namespace)
		} else {
			cnt = s.counts[topologyPair{c.topologyKey, v}]
		}
		score += float64(cnt)*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// ScoreExtensions returns the normalization.
func (p *PodTopologySpread) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore: the least crowded nodes score 100; ignored nodes 0.
func (p *PodTopologySpread) NormalizeScore(_ context.Context, state *framework.CycleState, _ *corev1.Pod, scores []framework.NodeScore) *framework.Status {
	d, err := state.Read(preScoreKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s := d.(*scoreState)
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, sc := range scores {
		if s.ignored[sc.Name] {
			continue
		}
		lo, hi = min(lo, sc.Score), max(hi, sc.Score)
	}
	for i := range scores {
		switch {
		case s.ignored[scores[i].Name]:
			scores[i].Score = 0
		case hi == 0:
			scores[i].Score = framework.MaxNodeScore
		default:
			scores[i].Score = framework.MaxNodeScore * (hi + lo - scores[i].Score) / hi
		}
	}
	return nil
}

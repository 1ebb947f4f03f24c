package scheduler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Profile runs a set of plugins at the extension points; it is the
// framework.Handle the plugins are given.
type Profile struct {
	SchedulerName string

	preFilter  []framework.PreFilterPlugin
	filter     []framework.FilterPlugin
	postFilter []framework.PostFilterPlugin
	preScore   []framework.PreScorePlugin
	score      []framework.ScorePlugin
	weights    map[string]int64
	reserve    []framework.ReservePlugin
	preBind    []framework.PreBindPlugin
	bind       []framework.BindPlugin
	// events are the cluster events each plugin registered.
	events map[string][]framework.ClusterEvent

	client       kubernetes.Interface
	informers    informers.SharedInformerFactory
	recorder     events.EventRecorder
	snapshot     *Snapshot
	nominated    func(nodeName string) []*framework.PodInfo
	parallelizer framework.Parallelizer
}

var _ framework.Handle = (*Profile)(nil)

// SnapshotSharedLister returns the current cycle's snapshot.
func (p *Profile) SnapshotSharedLister() framework.SharedLister { return p.snapshot }

// ClientSet returns the API client.
func (p *Profile) ClientSet() kubernetes.Interface { return p.client }

// SharedInformerFactory returns the informers (nil in some tests).
func (p *Profile) SharedInformerFactory() informers.SharedInformerFactory { return p.informers }

// EventRecorder returns the event recorder.
func (p *Profile) EventRecorder() events.EventRecorder { return p.recorder }

// Parallelizer returns the parallelizer of filters and scores.
func (p *Profile) Parallelizer() framework.Parallelizer { return p.parallelizer }

// NominatedPodsForNode lists the pods nominated to a node.
func (p *Profile) NominatedPodsForNode(nodeName string) []*framework.PodInfo {
	if p.nominated == nil {
		return nil
	}
	return p.nominated(nodeName)
}

// addPlugin puts a plugin at every extension point it implements.
func (p *Profile) addPlugin(pl framework.Plugin, weight int64) {
	if x, ok := pl.(framework.PreFilterPlugin); ok {
		p.preFilter = append(p.preFilter, x)
	}
	if x, ok := pl.(framework.FilterPlugin); ok {
		p.filter = append(p.filter, x)
	}
	if x, ok := pl.(framework.PostFilterPlugin); ok {
		p.postFilter = append(p.postFilter, x)
	}
	if x, ok := pl.(framework.PreScorePlugin); ok {
		p.preScore = append(p.preScore, x)
	}
	if x, ok := pl.(framework.ScorePlugin); ok {
		p.score = append(p.score, x)
		p.weights[pl.Name()] = weight
	}
	if x, ok := pl.(framework.ReservePlugin); ok {
		p.reserve = append(p.reserve, x)
	}
	if x, ok := pl.(framework.PreBindPlugin); ok {
		p.preBind = append(p.preBind, x)
	}
	if x, ok := pl.(framework.BindPlugin); ok {
		p.bind = append(p.bind, x)
	}
	if x, ok := pl.(framework.EnqueueExtensions); ok {
		p.events[pl.Name()] = x.EventsToRegister()
	}
}

// RunPreFilterPlugins runs the PreFilters, merging their node narrowings.
// A rejection is returned with the rejecting plugin's name.
func (p *Profile) RunPreFilterPlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status, []string) {
	var result *framework.PreFilterResult
	var narrowing []string
	skip := sets.New[string]()
	for _, pl := range p.preFilter {
		r, st := pl.PreFilter(ctx, state, pod, nodes)
		if st.IsSkip() {
			skip.Insert(pl.Name())
			continue
		}
		if !st.IsSuccess() {
			if st.IsRejected() {
				return nil, st.WithPlugin(pl.Name()), narrowing
			}
			return nil, framework.AsStatus(fmt.Errorf("running PreFilter plugin %q: %w", pl.Name(), st.AsError())).WithPlugin(pl.Name()), narrowing
		}
		if !r.AllNodes() {
			narrowing = append(narrowing, pl.Name())
		}
		result = result.Merge(r)
		if !result.AllNodes() && result.NodeNames.Len() == 0 {
			msg := fmt.Sprintf("node(s) didn't satisfy plugin(s) %v simultaneously", narrowing)
			if len(narrowing) == 1 {
				msg = fmt.Sprintf("node(s) didn't satisfy plugin %v", narrowing[0])
			}
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, msg).WithPlugin(pl.Name()), narrowing
		}
	}
	state.SkipFilterPlugins = skip
	filters := make([]framework.FilterPlugin, 0, len(p.filter))
	for _, pl := range p.filter {
		if !skip.Has(pl.Name()) {
			filters = append(filters, pl)
		}
	}
	state.SetFilters(filters)
	return result, nil, narrowing
}

// RunFilterPlugins runs every Filter on one node; the first rejection
// wins.
func (p *Profile) RunFilterPlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	filters, recorded := state.Filters(), state.Filters() != nil
	if !recorded {
		filters = p.filter
	}
	for _, pl := range filters {
		if !recorded && state.SkipFilterPlugins.Has(pl.Name()) {
			continue
		}
		if st := pl.Filter(ctx, state, pod, nodeInfo); !st.IsSuccess() {
			if !st.IsRejected() {
				st = framework.AsStatus(fmt.Errorf("running %q filter plugin: %w", pl.Name(), st.AsError()))
			}
			return st.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunFilterPluginsWithNominatedPods runs the Filters with the pods
// nominated to the node of equal or higher priority added; when any were
// added, the node must also fit without them (they may not come).
func (p *Profile) RunFilterPluginsWithNominatedPods(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	nominated := p.NominatedPodsForNode(nodeInfo.Node().Name)
	if len(nominated) > 0 {
		stateWith, infoWith, added, st := p.addNominatedPods(ctx, state, pod, nodeInfo, nominated)
		if !st.IsSuccess() {
			return st
		}
		if added {
			if st := p.RunFilterPlugins(ctx, stateWith, pod, infoWith); !st.IsSuccess() {
				return st
			}
		}
	}
	return p.RunFilterPlugins(ctx, state, pod, nodeInfo)
}

func (p *Profile) addNominatedPods(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo,
	nominated []*framework.PodInfo) (*framework.CycleState, *framework.NodeInfo, bool, *framework.Status) {
	prio := corev1helpers.PodPriority(pod)
	var stateOut *framework.CycleState
	var infoOut *framework.NodeInfo
	for _, pi := range nominated {
		if pi.Pod.UID == pod.UID || corev1helpers.PodPriority(pi.Pod) < prio {
			continue
		}
		if stateOut == nil {
			stateOut, infoOut = state.Clone(), nodeInfo.Clone()
		}
		infoOut.AddPodInfo(pi)
		if st := p.RunPreFilterExtensionAddPod(ctx, stateOut, pod, pi, infoOut); !st.IsSuccess() {
			return nil, nil, false, st
		}
	}
	return stateOut, infoOut, stateOut != nil, nil
}

// RunPreFilterExtensionAddPod tells the PreFilters a pod was added.
func (p *Profile) RunPreFilterExtensionAddPod(ctx context.Context, state *framework.CycleState, podToSchedule *corev1.Pod, added *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	for _, pl := range p.preFilter {
		if ext := pl.PreFilterExtensions(); ext != nil && !state.SkipFilterPlugins.Has(pl.Name()) {
			if st := ext.AddPod(ctx, state, podToSchedule, added, nodeInfo); !st.IsSuccess() {
				return st.WithPlugin(pl.Name())
			}
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod tells the PreFilters a pod was removed.
func (p *Profile) RunPreFilterExtensionRemovePod(ctx context.Context, state *framework.CycleState, podToSchedule *corev1.Pod, removed *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	for _, pl := range p.preFilter {
		if ext := pl.PreFilterExtensions(); ext != nil && !state.SkipFilterPlugins.Has(pl.Name()) {
			if st := ext.RemovePod(ctx, state, podToSchedule, removed, nodeInfo); !st.IsSuccess() {
				return st.WithPlugin(pl.Name())
			}
		}
	}
	return nil
}

// RunPostFilterPlugins runs PostFilters until one succeeds.
func (p *Profile) RunPostFilterPlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, m framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	var result *framework.PostFilterResult
	var reasons []string
	for _, pl := range p.postFilter {
		r, st := pl.PostFilter(ctx, state, pod, m)
		if st.IsSuccess() {
			return r, st
		}
		if !st.IsRejected() {
			return nil, st.WithPlugin(pl.Name())
		}
		if r != nil && result == nil {
			result = r
		}
		reasons = append(reasons, st.Reasons()...)
	}
	return result, framework.NewStatus(framework.Unschedulable, reasons...)
}

// RunPreScorePlugins runs the PreScores; those answering Skip are not
// scored.
func (p *Profile) RunPreScorePlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) *framework.Status {
	skip := sets.New[string]()
	for _, pl := range p.preScore {
		st := pl.PreScore(ctx, state, pod, nodes)
		if st.IsSkip() {
			skip.Insert(pl.Name())
			continue
		}
		if !st.IsSuccess() {
			return framework.AsStatus(fmt.Errorf("running PreScore plugin %q: %w", pl.Name(), st.AsError()))
		}
	}
	state.SkipScorePlugins = skip
	return nil
}

// RunScorePlugins scores the nodes: each plugin scores, normalizes, and
// is weighted; the totals are returned in node order.
func (p *Profile) RunScorePlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) ([]framework.NodeScore, *framework.Status) {
	totals := make([]framework.NodeScore, len(nodes))
	for i, n := range nodes {
		totals[i].Name = n.Node().Name
	}
	var plugins []framework.ScorePlugin
	for _, pl := range p.score {
		if !state.SkipScorePlugins.Has(pl.Name()) {
			plugins = append(plugins, pl)
		}
	}
	if len(plugins) == 0 {
		return totals, nil
	}
	scores := make([][]framework.NodeScore, len(plugins))
	for i := range plugins {
		scores[i] = make([]framework.NodeScore, len(nodes))
	}
	errs := make([]*framework.Status, len(nodes))
	p.parallelizer.Until(ctx, len(nodes), func(i int) {
		for j, pl := range plugins {
			s, st := pl.Score(ctx, state, pod, nodes[i])
			if !st.IsSuccess() {
				errs[i] = st.WithPlugin(pl.Name())
				return
			}
			scores[j][i] = framework.NodeScore{Name: totals[i].Name, Score: s}
		}
	})
	for _, st := range errs {
		if st != nil {
			return nil, framework.AsStatus(fmt.Errorf("running Score plugin %q: %w", st.Plugin(), st.AsError()))
		}
	}
	for j, pl := range plugins {
		if ext := pl.ScoreExtensions(); ext != nil {
			if st := ext.NormalizeScore(ctx, state, pod, scores[j]); !st.IsSuccess() {
				return nil, framework.AsStatus(fmt.Errorf("running Normalize on Score plugin %q: %w", pl.Name(), st.AsError()))
			}
		}
		w := p.weights[pl.Name()]
		for i := range nodes {
			totals[i].Score += scores[j][i].Score * w
		}
	}
	return totals, nil
}

// RunReservePluginsReserve runs the Reserves; on a failure the caller
// runs Unreserve.
func (p *Profile) RunReservePluginsReserve(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	for _, pl := range p.reserve {
		if st := pl.Reserve(ctx, state, pod, nodeName); !st.IsSuccess() {
			return st.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunReservePluginsUnreserve undoes the Reserves, in reverse order.
func (p *Profile) RunReservePluginsUnreserve(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) {
	for i := len(p.reserve) - 1; i >= 0; i-- {
		p.reserve[i].Unreserve(ctx, state, pod, nodeName)
	}
}

// RunPreBindPlugins runs the PreBinds in order; the first failure stops
// them.
func (p *Profile) RunPreBindPlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	for _, pl := range p.preBind {
		if st := pl.PreBind(ctx, state, pod, nodeName); !st.IsSuccess() {
			if !st.IsRejected() {
				st = framework.AsStatus(fmt.Errorf("running PreBind plugin %q: %w", pl.Name(), st.AsError()))
			}
			return st.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunBindPlugins runs the binders until one does not Skip.
func (p *Profile) RunBindPlugins(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	for _, pl := range p.bind {
		st := pl.Bind(ctx, state, pod, nodeName)
		if st.IsSkip() {
			continue
		}
		return st.WithPlugin(pl.Name())
	}
	return framework.NewStatus(framework.Error, "no bind plugin bound the pod")
}

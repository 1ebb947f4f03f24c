package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"

	"github.com/havre/havre/internal/scheduler/framework"
	"github.com/havre/havre/internal/scheduler/plugins/defaultbinder"
	"github.com/havre/havre/internal/scheduler/plugins/defaultpreemption"
	"github.com/havre/havre/internal/scheduler/plugins/interpodaffinity"
	"github.com/havre/havre/internal/scheduler/plugins/nodeaffinity"
	"github.com/havre/havre/internal/scheduler/plugins/nodename"
	"github.com/havre/havre/internal/scheduler/plugins/nodeports"
	"github.com/havre/havre/internal/scheduler/plugins/noderesources"
	"github.com/havre/havre/internal/scheduler/plugins/nodeunschedulable"
	"github.com/havre/havre/internal/scheduler/plugins/podtopologyspread"
	"github.com/havre/havre/internal/scheduler/plugins/tainttoleration"
	"github.com/havre/havre/internal/scheduler/plugins/volumebinding"
	"github.com/havre/havre/internal/scheduler/plugins/volumerestrictions"
)

// Upstream's feasible-node search bounds: with many nodes the scheduler
// stops filtering once it found a share of them (adaptive, at least 5%)
// and at least 100.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
	// maxConcurrentBindings bounds the binding goroutines in flight.
	maxConcurrentBindings = 256
)

// ErrNoNodesAvailable is upstream's error when the cluster has no nodes.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// Scheduler assigns pending pods to nodes.
type Scheduler struct {
	cfg      *Config
	client   kubernetes.Interface
	Cache    *Cache
	Queue    *Queue
	profile  *Profile
	snapshot *Snapshot
	pods     corelisters.PodLister
	synced   []toolscache.InformerSynced

	broadcaster events.EventBroadcaster
	nextStart   int
	// statuses is reused by every cycle's filtering.
	statuses []*framework.Status
	bindings chan struct{}
	wg       sync.WaitGroup
	// scheduled counts pods bound, for tests and logs.
	scheduled atomic.Int64
}

// Option sets what New takes beyond its arguments.
type Option func(*options)

type options struct {
	dynamic dynamic.Interface
}

// WithDynamicClient gives VolumeBinding the client it reads
// VolumeSnapshots with (without it, claims restored from a snapshot are
// not placed).
func WithDynamicClient(dyn dynamic.Interface) Option {
	return func(o *options) { o.dynamic = dyn }
}

// New builds a scheduler on the shared informers; its handlers are
// registered at once and it runs once Run is called (after the factory
// started). Without informers (some tests) the volume plugins are left
// out.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, cfg *Config, opts ...Option) (*Scheduler, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	recorder := broadcaster.NewRecorder(scheme.Scheme, cfg.SchedulerName)
	s := &Scheduler{cfg: cfg, client: client, Cache: NewCache(), snapshot: NewSnapshot(), broadcaster: broadcaster,
		bindings: make(chan struct{}, maxConcurrentBindings)}
	profile, err := NewProfile(cfg, client, factory, recorder, s.snapshot, o.dynamic)
	if err != nil {
		return nil, err
	}
	s.profile = profile
	s.Queue = NewQueue(QueueOptions{InitialBackoff: cfg.PodInitialBackoff, MaxBackoff: cfg.PodMaxBackoff, Events: profile.events})
	profile.nominated = s.Queue.NominatedPodsForNode
	if factory != nil {
		s.pods = factory.Core().V1().Pods().Lister()
		if err := s.addEventHandlers(factory); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewProfile builds the default plugins as cfg configures them; dyn
// (may be nil) reads VolumeSnapshots.
func NewProfile(cfg *Config, client kubernetes.Interface, factory informers.SharedInformerFactory,
	recorder events.EventRecorder, snapshot *Snapshot, dyn dynamic.Interface) (*Profile, error) {
	workers := cfg.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Profile{SchedulerName: cfg.SchedulerName, weights: map[string]int64{}, events: map[string][]framework.ClusterEvent{},
		client: client, informers: factory, recorder: recorder, snapshot: snapshot, parallelizer: framework.NewParallelizer(workers)}
	fit, err := noderesources.NewFit(&cfg.Fit)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", noderesources.FitName, err)
	}
	plugins := map[string]framework.Plugin{
		nodeunschedulable.Name:               nodeunschedulable.New(),
		nodename.Name:                        nodename.New(),
		tainttoleration.Name:                 tainttoleration.New(),
		nodeaffinity.Name:                    nodeaffinity.New(),
		nodeports.Name:                       nodeports.New(),
		noderesources.FitName:                fit,
		podtopologyspread.Name:               podtopologyspread.New(p),
		interpodaffinity.Name:                interpodaffinity.New(p),
		defaultpreemption.Name:               defaultpreemption.New(p, cfg.Preemption),
		noderesources.BalancedAllocationName: noderesources.NewBalancedAllocation(),
		defaultbinder.Name:                   defaultbinder.New(p),
	}
	// The volume plugins read informers; without them they are left out.
	if vr := volumerestrictions.New(p); vr != nil {
		plugins[volumerestrictions.Name] = vr
	}
	if vb := volumebinding.New(p, dyn, cfg.VolumeBinding); vb != nil {
		plugins[volumebinding.Name] = vb
	}
	for _, name := range pluginNames {
		pl, ok := plugins[name]
		if !ok || cfg.Disabled.Has(name) {
			continue
		}
		p.addPlugin(pl, cfg.weight(name))
	}
	if len(p.bind) == 0 {
		return nil, errors.New("no bind plugin is enabled")
	}
	return p, nil
}

// Run schedules pods until ctx is done.
func (s *Scheduler) Run(ctx context.Context) {
	if err := s.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		slog.Error("scheduler: starting the event recorder", "err", err)
	}
	defer s.broadcaster.Shutdown()
	if len(s.synced) > 0 && !toolscache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	go s.Queue.Run(ctx)
	slog.Info("scheduler started", "schedulerName", s.cfg.SchedulerName, "scoringStrategy", s.cfg.Fit.ScoringStrategy.Type)
	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
	s.wg.Wait()
}

// Scheduled is the number of pods this scheduler bound.
func (s *Scheduler) Scheduled() int64 { return s.scheduled.Load() }

// scheduleOne runs one scheduling cycle: pop, filter, score, assume,
// reserve, and hand the binding to a goroutine.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	pInfo, cycle := s.Queue.Pop()
	if pInfo == nil {
		return
	}
	pod := pInfo.Pod
	if pod.DeletionTimestamp != nil || s.Cache.IsAssumed(pod) {
		s.Queue.Done(pod)
		return
	}
	state := framework.NewCycleState()
	state.PodInfo = pInfo.PodInfo
	s.Cache.UpdateSnapshot(s.snapshot)
	host, err := s.schedulePod(ctx, state, pInfo)
	if err != nil {
		s.handleSchedulingFailure(ctx, state, pInfo, cycle, err)
		return
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	if err := s.Cache.AssumePod(assumed); err != nil {
		s.handleSchedulingFailure(ctx, state, pInfo, cycle, err)
		return
	}
	if st := s.profile.RunReservePluginsReserve(ctx, state, assumed, host); !st.IsSuccess() {
		s.profile.RunReservePluginsUnreserve(ctx, state, assumed, host)
		_ = s.Cache.ForgetPod(assumed)
		s.handleSchedulingFailure(ctx, state, pInfo, cycle, st.AsError())
		return
	}
	s.Queue.DeleteNominatedPodIfExists(pod)
	s.Queue.Done(pod)
	s.bindings <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.bindings }()
		s.bind(ctx, state, pInfo, assumed, host)
	}()
}

// bind runs the PreBinds, then the binders; a failure unreserves, forgets
// the assumed pod and requeues the pod (to backoff: it is retried).
func (s *Scheduler) bind(ctx context.Context, state *framework.CycleState, pInfo *QueuedPodInfo, assumed *corev1.Pod, host string) {
	var err error
	if st := s.profile.RunPreBindPlugins(ctx, state, assumed, host); !st.IsSuccess() {
		err = st.AsError()
	} else if st := s.profile.RunBindPlugins(ctx, state, assumed, host); !st.IsSuccess() {
		err = fmt.Errorf("binding rejected: %w", st.AsError())
	}
	if err != nil {
		s.profile.RunReservePluginsUnreserve(ctx, state, assumed, host)
		if err := s.Cache.ForgetPod(assumed); err != nil {
			slog.Error("scheduler: forgetting an assumed pod", "pod", klogKey(assumed), "err", err)
		}
		// The room the pod took is free again.
		s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete)
		pInfo.UnschedulablePlugins = nil
		s.requeue(ctx, pInfo, 0, err, nil)
		return
	}
	s.scheduled.Add(1)
	s.profile.recorder.Eventf(assumed, nil, corev1.EventTypeNormal, "Scheduled", "Binding",
		"Successfully assigned %v/%v to %v", assumed.Namespace, assumed.Name, host)
}

func klogKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// schedulePod finds the best node for the pod.
func (s *Scheduler) schedulePod(ctx context.Context, state *framework.CycleState, pInfo *QueuedPodInfo) (string, error) {
	if s.snapshot.NumNodes() == 0 {
		return "", ErrNoNodesAvailable
	}
	pod := pInfo.Pod
	feasible, diagnosis, err := s.findNodesThatFitPod(ctx, state, pod)
	if err != nil {
		return "", err
	}
	if len(feasible) == 0 {
		return "", &framework.FitError{Pod: pod, NumAllNodes: s.snapshot.NumNodes(), Diagnosis: diagnosis}
	}
	if len(feasible) == 1 {
		return feasible[0].Node().Name, nil
	}
	if st := s.profile.RunPreScorePlugins(ctx, state, pod, feasible); !st.IsSuccess() {
		return "", st.AsError()
	}
	scores, st := s.profile.RunScorePlugins(ctx, state, pod, feasible)
	if !st.IsSuccess() {
		return "", st.AsError()
	}
	return selectHost(scores), nil
}

// selectHost picks the highest score, ties broken at random.
func selectHost(scores []framework.NodeScore) string {
	best, ties := 0, 1
	for i := 1; i < len(scores); i++ {
		switch {
		case scores[i].Score > scores[best].Score:
			best, ties = i, 1
		case scores[i].Score == scores[best].Score:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return scores[best].Name
}

// numFeasibleNodesToFind is how many feasible nodes are enough.
func (s *Scheduler) numFeasibleNodesToFind(numAll int) int {
	if numAll < minFeasibleNodesToFind {
		return numAll
	}
	pct := int(s.cfg.PercentageOfNodesToScore)
	if pct == 0 {
		pct = max(50-numAll/125, minFeasibleNodesPercentageToFind)
	}
	if pct >= 100 {
		return numAll
	}
	return max(numAll*pct/100, minFeasibleNodesToFind)
}

// findNodesThatFitPod runs the PreFilters, then the Filters over the
// nodes (the pod's nominated node first), until enough fit.
func (s *Scheduler) findNodesThatFitPod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) ([]*framework.NodeInfo, framework.Diagnosis, error) {
	diagnosis := framework.Diagnosis{NodeToStatus: framework.NewNodeToStatus(), UnschedulablePlugins: sets.New[string]()}
	all := s.snapshot.List()
	preRes, st, narrowing := s.profile.RunPreFilterPlugins(ctx, state, pod, all)
	if !st.IsSuccess() {
		if !st.IsRejected() {
			return nil, diagnosis, st.AsError()
		}
		diagnosis.NodeToStatus.AbsentStatus = st
		diagnosis.PreFilterMsg = st.Message()
		diagnosis.UnschedulablePlugins.Insert(st.Plugin())
		return nil, diagnosis, nil
	}
	if nominated := pod.Status.NominatedNodeName; nominated != "" {
		if n, err := s.snapshot.Get(nominated); err == nil && (preRes.AllNodes() || preRes.NodeNames.Has(nominated)) {
			if st := s.profile.RunFilterPluginsWithNominatedPods(ctx, state, pod, n); st.IsSuccess() {
				return []*framework.NodeInfo{n}, diagnosis, nil
			}
		}
	}
	nodes := all
	if !preRes.AllNodes() {
		nodes = make([]*framework.NodeInfo, 0, preRes.NodeNames.Len())
		for name := range preRes.NodeNames {
			if n, err := s.snapshot.Get(name); err == nil {
				nodes = append(nodes, n)
			}
		}
		diagnosis.NodeToStatus.AbsentStatus = framework.NewStatus(framework.UnschedulableAndUnresolvable,
			fmt.Sprintf("node(s) didn't satisfy plugin(s) %v", narrowing))
		diagnosis.UnschedulablePlugins.Insert(narrowing...)
	}
	feasible, err := s.findNodesThatPassFilters(ctx, state, pod, &diagnosis, nodes)
	return feasible, diagnosis, err
}

func (s *Scheduler) findNodesThatPassFilters(ctx context.Context, state *framework.CycleState, pod *corev1.Pod,
	diagnosis *framework.Diagnosis, nodes []*framework.NodeInfo) ([]*framework.NodeInfo, error) {
	n := len(nodes)
	if n == 0 {
		return nil, nil
	}
	want := s.numFeasibleNodesToFind(n)
	feasible := make([]*framework.NodeInfo, want)
	if cap(s.statuses) < n {
		s.statuses = make([]*framework.Status, n)
	}
	statuses := s.statuses[:n]
	defer clear(statuses)
	filter := s.profile.RunFilterPluginsWithNominatedPods
	if !s.Queue.nominator.any() {
		filter = s.profile.RunFilterPlugins
	}
	var found, processed atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := s.nextStart % n
	check := func(i int) {
		node := nodes[(start+i)%n]
		st := filter(ctx, state, pod, node)
		processed.Add(1)
		if st.IsSuccess() {
			if k := found.Add(1); k <= int64(want) {
				feasible[k-1] = node
				if k == int64(want) {
					cancel()
				}
			}
			return
		}
		statuses[(start+i)%n] = st
	}
	s.profile.parallelizer.Until(ctx, n, check)
	s.nextStart = (start + int(processed.Load())) % n
	feasible = feasible[:min(int(found.Load()), want)]
	var firstErr error
	for i, st := range statuses {
		if st == nil {
			continue
		}
		if !st.IsRejected() {
			if firstErr == nil {
				firstErr = st.AsError()
			}
			continue
		}
		diagnosis.NodeToStatus.Statuses[nodes[i].Node().Name] = st
		diagnosis.UnschedulablePlugins.Insert(st.Plugin())
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return feasible, nil
}

// handleSchedulingFailure runs preemption for a pod that fits nowhere,
// then requeues it and reports the failure.
func (s *Scheduler) handleSchedulingFailure(ctx context.Context, state *framework.CycleState, pInfo *QueuedPodInfo, cycle int64, err error) {
	var nominate *string
	var fitErr *framework.FitError
	if errors.As(err, &fitErr) {
		pInfo.UnschedulablePlugins = fitErr.Diagnosis.UnschedulablePlugins
		result, st := s.profile.RunPostFilterPlugins(ctx, state, pInfo.Pod, fitErr.Diagnosis.NodeToStatus)
		fitErr.Diagnosis.PostFilterMsg = st.Message()
		if st.Code() == framework.Error {
			slog.Error("scheduler: preemption", "pod", klogKey(pInfo.Pod), "err", st.AsError())
		}
		if result != nil {
			nominate = &result.NominatedNodeName
		}
	} else if errors.Is(err, ErrNoNodesAvailable) {
		pInfo.UnschedulablePlugins = sets.New[string]()
		empty := ""
		nominate = &empty
	} else {
		pInfo.UnschedulablePlugins = nil
	}
	s.requeue(ctx, pInfo, cycle, err, nominate)
}

// requeue puts a failed pod back (unless it was deleted or bound
// meanwhile), records its nomination, and reports the failure with a
// FailedScheduling Event and PodScheduled=False.
func (s *Scheduler) requeue(ctx context.Context, pInfo *QueuedPodInfo, cycle int64, err error, nominate *string) {
	pod := pInfo.Pod
	if s.pods != nil {
		cur, gerr := s.pods.Pods(pod.Namespace).Get(pod.Name)
		if gerr != nil || cur.UID != pod.UID || cur.Spec.NodeName != "" {
			s.Queue.Done(pod)
			return
		}
		pInfo.Update(cur)
		pod = cur
	}
	if cycle == 0 {
		// A binding failed after its cycle: it may have missed events.
		cycle = -1
	}
	s.Queue.AddUnschedulableIfNotPresent(pInfo, cycle)
	if nominate != nil {
		if *nominate != "" {
			s.Queue.AddNominatedPod(pod, *nominate)
		} else {
			s.Queue.DeleteNominatedPodIfExists(pod)
		}
	}
	reason := corev1.PodReasonUnschedulable
	var fitErr *framework.FitError
	if !errors.As(err, &fitErr) && !errors.Is(err, ErrNoNodesAvailable) {
		reason = corev1.PodReasonSchedulerError
	}
	msg := err.Error()
	s.profile.recorder.Eventf(pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", truncate(msg, 1024))
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
	if uerr := updatePodStatus(ctx, s.client, pod, cond, nominate); uerr != nil {
		slog.Warn("scheduler: updating the pod's status", "pod", klogKey(pod), "err", uerr)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// Package framework holds what the scheduler and its plugins share, after
// kube-scheduler's scheduling framework: the extension points a plugin may
// implement (PreFilter, Filter, PostFilter, PreScore, Score, Reserve,
// PreBind, Bind),
// the Status they answer with, the CycleState of one scheduling attempt, and
// NodeInfo, the scheduler's view of one node and the pods on it.
//
// It must never call the API in the filter and score paths: plugins read
// the scheduler's snapshot, which is built from informers.
package framework

import (
	"context"
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
)

// Code is the outcome of running a plugin.
type Code int

// The codes a plugin answers with, as upstream's.
const (
	// Success: the plugin ran and the pod may go on.
	Success Code = iota
	// Error: an internal error, not about the pod and the node.
	Error
	// Unschedulable: the pod does not fit now; preemption may help.
	Unschedulable
	// UnschedulableAndUnresolvable: the pod does not fit and preempting
	// pods would not change that.
	UnschedulableAndUnresolvable
	// Skip: from PreFilter or PreScore, the plugin has nothing to do for
	// this pod in this cycle and its Filter or Score is not run.
	Skip
)

var codeNames = []string{"Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Skip"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Unknown"
}

// Status is the result of running a plugin; nil means Success.
type Status struct {
	code    Code
	reasons []string
	err     error
	plugin  string
}

// NewStatus returns a status of code with the given reasons.
func NewStatus(code Code, reasons ...string) *Status {
	s := &Status{code: code, reasons: reasons}
	if code == Error {
		s.err = errors.New(s.Message())
	}
	return s
}

// AsStatus wraps an internal error in an Error status; nil gives nil.
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, reasons: []string{err.Error()}, err: err}
}

// Code returns the status's code; nil is Success.
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// IsSuccess reports whether the status is nil or Success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip reports whether the plugin asked to be skipped.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected reports whether the pod was found not to fit.
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable
}

// Reasons returns the reasons of a rejection.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	if s.err != nil && s.code == Error {
		return []string{s.err.Error()}
	}
	return s.reasons
}

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Reasons(), ", ")
}

// AsError returns nil for a successful or skipped status, else an error.
func (s *Status) AsError() error {
	if s.IsSuccess() || s.IsSkip() {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return errors.New(s.Message())
}

// Plugin is the plugin that answered with this status.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// WithPlugin records the plugin that answered and returns s.
func (s *Status) WithPlugin(name string) *Status {
	if s != nil {
		s.plugin = name
	}
	return s
}

// Plugin is the parent of every plugin interface.
type Plugin interface {
	Name() string
}

// PreFilterResult narrows the nodes the pod is filtered on; nil means all.
type PreFilterResult struct {
	NodeNames sets.Set[string]
}

// AllNodes reports whether r leaves every node in.
func (r *PreFilterResult) AllNodes() bool { return r == nil || r.NodeNames == nil }

// Merge intersects two results.
func (r *PreFilterResult) Merge(other *PreFilterResult) *PreFilterResult {
	if r.AllNodes() {
		return other
	}
	if other.AllNodes() {
		return r
	}
	return &PreFilterResult{NodeNames: r.NodeNames.Intersection(other.NodeNames)}
}

// PreFilterPlugin runs once per scheduling attempt, before Filter, to
// compute state its Filter reads or to reject the pod outright.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) (*PreFilterResult, *Status)
	// PreFilterExtensions returns the plugin's extensions, or nil.
	PreFilterExtensions() PreFilterExtensions
}

// PreFilterExtensions update a PreFilter's state when pods are added to or
// removed from a node during preemption and when nominated pods are
// considered.
type PreFilterExtensions interface {
	AddPod(ctx context.Context, state *CycleState, podToSchedule *corev1.Pod, podInfoToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RemovePod(ctx context.Context, state *CycleState, podToSchedule *corev1.Pod, podInfoToRemove *PodInfo, nodeInfo *NodeInfo) *Status
}

// FilterPlugin decides whether the pod fits on one node. Filters run in
// parallel over nodes: they only read the CycleState.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeInfo *NodeInfo) *Status
}

// PostFilterResult is what a PostFilter plugin found: the node the pod is
// nominated to once victims are gone.
type PostFilterResult struct {
	NominatedNodeName string
}

// PostFilterPlugin runs when no node fits the pod (preemption).
type PostFilterPlugin interface {
	Plugin
	PostFilter(ctx context.Context, state *CycleState, pod *corev1.Pod, filtered NodeToStatus) (*PostFilterResult, *Status)
}

// PreScorePlugin runs once before Score with the feasible nodes.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) *Status
}

// MaxNodeScore and MinNodeScore bound a normalized score.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
)

// NodeScore is one node's score.
type NodeScore struct {
	Name  string
	Score int64
}

// ScorePlugin ranks feasible nodes.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeInfo *NodeInfo) (int64, *Status)
	// ScoreExtensions returns the plugin's normalization, or nil.
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions normalize a plugin's scores into [MinNodeScore, MaxNodeScore].
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *corev1.Pod, scores []NodeScore) *Status
}

// ReservePlugin is told when a node is chosen (the pod is assumed there)
// and when that choice is undone.
type ReservePlugin interface {
	Plugin
	Reserve(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string)
}

// PreBindPlugin runs in the binding cycle, after Reserve and before Bind,
// to do what must be done before the pod is bound (VolumeBinding binds
// and provisions the pod's claims there). It may block; a failure
// unreserves the pod and requeues it.
type PreBindPlugin interface {
	Plugin
	PreBind(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
}

// BindPlugin binds the pod to its node. A binder answering Skip lets the
// next one bind.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeName string) *Status
}

// EnqueueExtensions tell which cluster events may make a pod this plugin
// rejected schedulable, so the queue retries it only then.
type EnqueueExtensions interface {
	Plugin
	EventsToRegister() []ClusterEvent
}

// Handle is what the scheduler gives plugins.
type Handle interface {
	// SnapshotSharedLister is the snapshot of the cluster of the current
	// scheduling cycle.
	SnapshotSharedLister() SharedLister
	ClientSet() kubernetes.Interface
	SharedInformerFactory() informers.SharedInformerFactory
	EventRecorder() events.EventRecorder
	// RunFilterPluginsWithNominatedPods runs every Filter on one node, with
	// the pods nominated to it of equal or higher priority added.
	RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *corev1.Pod, nodeInfo *NodeInfo) *Status
	RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, podToSchedule *corev1.Pod, podInfoToAdd *PodInfo, nodeInfo *NodeInfo) *Status
	RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, podToSchedule *corev1.Pod, podInfoToRemove *PodInfo, nodeInfo *NodeInfo) *Status
	// NominatedPodsForNode are the pods nominated to run on a node.
	NominatedPodsForNode(nodeName string) []*PodInfo
	Parallelizer() Parallelizer
}

// SharedLister lists the snapshot's node infos.
type SharedLister interface {
	NodeInfos() NodeInfoLister
}

// NodeInfoLister reads the node infos of a snapshot.
type NodeInfoLister interface {
	List() []*NodeInfo
	// HavePodsWithAffinityList lists the nodes with pods that have
	// (anti-)affinity terms.
	HavePodsWithAffinityList() []*NodeInfo
	// HavePodsWithRequiredAntiAffinityList lists the nodes with pods that
	// have required anti-affinity terms.
	HavePodsWithRequiredAntiAffinityList() []*NodeInfo
	Get(nodeName string) (*NodeInfo, error)
}

// Package defaultpreemption is the DefaultPreemption plugin (PostFilter):
// when a pod fits on no node, it looks for a node where evicting pods of
// lower priority makes it fit, deletes those victims gracefully and
// nominates the node for the pod, as kube-scheduler does.
package defaultpreemption

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	policylisters "k8s.io/client-go/listers/policy/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "DefaultPreemption"

// Upstream's messages.
const (
	msgNotHelpful      = "Preemption is not helpful for scheduling"
	msgNoVictims       = "No preemption victims found for incoming pod"
	msgPolicyNever     = "not eligible due to preemptionPolicy=Never."
	msgTerminatingPods = "not eligible due to a terminating pod on the nominated node."
)

// Args are the plugin's arguments: how many nodes are dry-run at least,
// as a share of the candidates and as a number.
type Args struct {
	MinCandidateNodesPercentage int32 `json:"minCandidateNodesPercentage,omitempty"`
	MinCandidateNodesAbsolute   int32 `json:"minCandidateNodesAbsolute,omitempty"`
}

// DefaultArgs are upstream's defaults: 10% and 100.
func DefaultArgs() Args { return Args{MinCandidateNodesPercentage: 10, MinCandidateNodesAbsolute: 100} }

// Validate checks the arguments.
func (a *Args) Validate() error {
	if a.MinCandidateNodesPercentage < 0 || a.MinCandidateNodesPercentage > 100 {
		return fmt.Errorf("minCandidateNodesPercentage: Invalid value: %d: not in valid range [0, 100]", a.MinCandidateNodesPercentage)
	}
	if a.MinCandidateNodesAbsolute < 0 {
		return fmt.Errorf("minCandidateNodesAbsolute: Invalid value: %d: not in valid range [0, inf)", a.MinCandidateNodesAbsolute)
	}
	if a.MinCandidateNodesPercentage == 0 && a.MinCandidateNodesAbsolute == 0 {
		return fmt.Errorf("minCandidateNodesPercentage and minCandidateNodesAbsolute: Invalid value: both cannot be zero")
	}
	return nil
}

// DefaultPreemption is the plugin.
type DefaultPreemption struct {
	handle framework.Handle
	args   Args
	pdbs   policylisters.PodDisruptionBudgetLister
}

var _ framework.PostFilterPlugin = (*DefaultPreemption)(nil)

// New returns the plugin; PodDisruptionBudgets come from the handle's
// informers when it has them.
func New(h framework.Handle, args Args) *DefaultPreemption {
	p := &DefaultPreemption{handle: h, args: args}
	if f := h.SharedInformerFactory(); f != nil {
		p.pdbs = f.Policy().V1().PodDisruptionBudgets().Lister()
	}
	return p
}

// Name returns the plugin's name.
func (*DefaultPreemption) Name() string { return Name }

// PostFilter runs preemption; its messages start with "preemption: ".
func (p *DefaultPreemption) PostFilter(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, m framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	res, st := p.preempt(ctx, state, pod, m)
	if msg := st.Message(); msg != "" {
		return res, framework.NewStatus(st.Code(), "preemption: "+msg)
	}
	return res, st
}

// candidate is a node where evicting victims makes the pod fit.
type candidate struct {
	node          string
	victims       []*corev1.Pod
	pdbViolations int
}

func (p *DefaultPreemption) preempt(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, m framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	if ok, msg := p.eligible(pod, m); !ok {
		return nil, framework.NewStatus(framework.Unschedulable, msg)
	}
	all := p.handle.SnapshotSharedLister().NodeInfos().List()
	if len(all) == 0 {
		return nil, framework.AsStatus(fmt.Errorf("no nodes available"))
	}
	potential := m.NodesForStatusCode(all, framework.Unschedulable)
	statuses := framework.NewNodeToStatus()
	var candidates []candidate
	if len(potential) > 0 {
		pdbs := p.listPDBs()
		want := p.numCandidates(len(potential))
		offset := rand.IntN(len(potential))
		for i := 0; i < len(potential) && len(candidates) < want; i++ {
			n := potential[(offset+i)%len(potential)]
			victims, violations, st := p.selectVictimsOnNode(ctx, state.Clone(), pod, n.Clone(), pdbs)
			if st.IsSuccess() && len(victims) > 0 {
				candidates = append(candidates, candidate{node: n.Node().Name, victims: victims, pdbViolations: violations})
				continue
			}
			if st.IsSuccess() {
				st = framework.AsStatus(fmt.Errorf("expected at least one victim pod on node %q", n.Node().Name))
			}
			statuses.Statuses[n.Node().Name] = st
		}
	}
	if len(candidates) == 0 {
		statuses.AbsentStatus = framework.NewStatus(framework.UnschedulableAndUnresolvable, msgNotHelpful)
		fitErr := &framework.FitError{Pod: pod, NumAllNodes: len(all), Diagnosis: framework.Diagnosis{NodeToStatus: statuses}}
		return &framework.PostFilterResult{}, framework.NewStatus(framework.Unschedulable, fitErr.Error())
	}
	best := pickOne(candidates)
	if st := p.prepare(ctx, best, pod); !st.IsSuccess() {
		return nil, st
	}
	return &framework.PostFilterResult{NominatedNodeName: best.node}, nil
}

// eligible: preemptionPolicy Never never preempts; a pod already
// nominated waits while lower-priority victims on that node terminate.
func (p *DefaultPreemption) eligible(pod *corev1.Pod, m framework.NodeToStatus) (bool, string) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return false, msgPolicyNever
	}
	nominated := pod.Status.NominatedNodeName
	if nominated == "" || m.Get(nominated).Code() == framework.UnschedulableAndUnresolvable {
		return true, ""
	}
	if n, err := p.handle.SnapshotSharedLister().NodeInfos().Get(nominated); err == nil {
		prio := corev1helpers.PodPriority(pod)
		for _, pi := range n.Pods {
			if corev1helpers.PodPriority(pi.Pod) < prio && terminatingByPreemption(pi.Pod) {
				return false, msgTerminatingPods
			}
		}
	}
	return true, ""
}

func terminatingByPreemption(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp == nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler {
			return true
		}
	}
	return false
}

// numCandidates is how many candidates are enough: a share of the
// potential nodes, at least the absolute minimum.
func (p *DefaultPreemption) numCandidates(n int) int {
	want := n * int(p.args.MinCandidateNodesPercentage) / 100
	want = max(want, int(p.args.MinCandidateNodesAbsolute))
	return min(max(want, 1), n)
}

func (p *DefaultPreemption) listPDBs() []*policyv1.PodDisruptionBudget {
	if p.pdbs == nil {
		return nil
	}
	pdbs, err := p.pdbs.List(labels.Everything())
	if err != nil {
		return nil
	}
	return pdbs
}

// selectVictimsOnNode removes every lower-priority pod, checks the pod then
// fits, and adds back as many as still let it fit, most important first
// (those a PodDisruptionBudget protects before the others).
func (p *DefaultPreemption) selectVictimsOnNode(ctx context.Context, state *framework.CycleState, pod *corev1.Pod,
	nodeInfo *framework.NodeInfo, pdbs []*policyv1.PodDisruptionBudget) ([]*corev1.Pod, int, *framework.Status) {
	remove := func(pi *framework.PodInfo) *framework.Status {
		if err := nodeInfo.RemovePod(pi.Pod); err != nil {
			return framework.AsStatus(err)
		}
		return p.handle.RunPreFilterExtensionRemovePod(ctx, state, pod, pi, nodeInfo)
	}
	add := func(pi *framework.PodInfo) *framework.Status {
		nodeInfo.AddPodInfo(pi)
		return p.handle.RunPreFilterExtensionAddPod(ctx, state, pod, pi, nodeInfo)
	}
	prio := corev1helpers.PodPriority(pod)
	var potential []*framework.PodInfo
	for _, pi := range append([]*framework.PodInfo(nil), nodeInfo.Pods...) {
		if corev1helpers.PodPriority(pi.Pod) < prio {
			potential = append(potential, pi)
			if st := remove(pi); !st.IsSuccess() {
				return nil, 0, st
			}
		}
	}
	if len(potential) == 0 {
		return nil, 0, framework.NewStatus(framework.UnschedulableAndUnresolvable, msgNoVictims)
	}
	if st := p.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, nodeInfo); !st.IsSuccess() {
		return nil, 0, st
	}
	sort.SliceStable(potential, func(i, j int) bool { return moreImportant(potential[i].Pod, potential[j].Pod) })
	violating, nonViolating := splitByPDB(potential, pdbs)
	var victims []*corev1.Pod
	violations := 0
	reprieve := func(pi *framework.PodInfo) (bool, *framework.Status) {
		if st := add(pi); !st.IsSuccess() {
			return false, st
		}
		if p.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, nodeInfo).IsSuccess() {
			return true, nil
		}
		if st := remove(pi); !st.IsSuccess() {
			return false, st
		}
		victims = append(victims, pi.Pod)
		return false, nil
	}
	for _, pi := range violating {
		fits, st := reprieve(pi)
		if !st.IsSuccess() {
			return nil, 0, st
		}
		if !fits {
			violations++
		}
	}
	for _, pi := range nonViolating {
		if _, st := reprieve(pi); !st.IsSuccess() {
			return nil, 0, st
		}
	}
	return victims, violations, nil
}

// moreImportant: higher priority, then started earlier.
func moreImportant(a, b *corev1.Pod) bool {
	pa, pb := corev1helpers.PodPriority(a), corev1helpers.PodPriority(b)
	if pa != pb {
		return pa > pb
	}
	return startTime(a).Before(startTime(b))
}

func startTime(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return time.Now()
}

// splitByPDB separates the pods whose eviction would take a
// PodDisruptionBudget below its allowed disruptions.
func splitByPDB(pods []*framework.PodInfo, pdbs []*policyv1.PodDisruptionBudget) (violating, nonViolating []*framework.PodInfo) {
	allowed := make([]int32, len(pdbs))
	for i, pdb := range pdbs {
		allowed[i] = pdb.Status.DisruptionsAllowed
	}
	for _, pi := range pods {
		violated := false
		if len(pi.Pod.Labels) > 0 {
			for i, pdb := range pdbs {
				if pdb.Namespace != pi.Pod.Namespace {
					continue
				}
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(pi.Pod.Labels)) {
					continue
				}
				if _, disrupted := pdb.Status.DisruptedPods[pi.Pod.Name]; disrupted {
					continue
				}
				allowed[i]--
				if allowed[i] < 0 {
					violated = true
				}
			}
		}
		if violated {
			violating = append(violating, pi)
		} else {
			nonViolating = append(nonViolating, pi)
		}
	}
	return violating, nonViolating
}

// pickOne chooses the candidate with the fewest budget violations, then
// the lowest highest victim priority, the lowest sum of victim priorities
// and the fewest victims.
func pickOne(cs []candidate) candidate {
	better := func(a, b candidate) bool {
		if a.pdbViolations != b.pdbViolations {
			return a.pdbViolations < b.pdbViolations
		}
		ha, hb := highest(a.victims), highest(b.victims)
		if ha != hb {
			return ha < hb
		}
		sa, sb := prioritySum(a.victims), prioritySum(b.victims)
		if sa != sb {
			return sa < sb
		}
		return len(a.victims) < len(b.victims)
	}
	best := cs[0]
	for _, c := range cs[1:] {
		if better(c, best) {
			best = c
		}
	}
	return best
}

func highest(pods []*corev1.Pod) int32 {
	h := int32(math.MinInt32)
	for _, p := range pods {
		h = max(h, corev1helpers.PodPriority(p))
	}
	return h
}

func prioritySum(pods []*corev1.Pod) int64 {
	var s int64
	for _, p := range pods {
		s += int64(corev1helpers.PodPriority(p)) + int64(math.MaxInt32) + 1
	}
	return s
}

// prepare evicts the victims (marking them DisruptionTarget, deleting
// them gracefully, with a Preempted event) and clears the nomination of
// lower-priority pods nominated to the node.
func (p *DefaultPreemption) prepare(ctx context.Context, c candidate, preemptor *corev1.Pod) *framework.Status {
	cs := p.handle.ClientSet()
	for _, v := range c.victims {
		cond := map[string]any{"status": map[string]any{"conditions": []map[string]any{{
			"type": corev1.DisruptionTarget, "status": corev1.ConditionTrue, "reason": corev1.PodReasonPreemptionByScheduler,
			"message":            preemptor.Spec.SchedulerName + ": preempting to accommodate a higher priority pod",
			"lastTransitionTime": metav1.Now(),
		}}}}
		patch, err := json.Marshal(cond)
		if err != nil {
			return framework.AsStatus(err)
		}
		if _, err := cs.CoreV1().Pods(v.Namespace).Patch(ctx, v.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return framework.AsStatus(err)
		}
		if err := cs.CoreV1().Pods(v.Namespace).Delete(ctx, v.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return framework.AsStatus(err)
		}
		if r := p.handle.EventRecorder(); r != nil {
			r.Eventf(v, preemptor, corev1.EventTypeNormal, "Preempted", "Preempting", "Preempted by pod %v on node %v", preemptor.UID, c.node)
		}
	}
	prio := corev1helpers.PodPriority(preemptor)
	for _, pi := range p.handle.NominatedPodsForNode(c.node) {
		if pi.Pod.UID == preemptor.UID || corev1helpers.PodPriority(pi.Pod) >= prio {
			continue
		}
		patch := []byte(`{"status":{"nominatedNodeName":null}}`)
		if _, err := cs.CoreV1().Pods(pi.Pod.Namespace).Patch(ctx, pi.Pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil && !apierrors.IsNotFound(err) {
			slog.Warn("scheduler: clearing the nominated node of a lower-priority pod", "pod", pi.Pod.Namespace+"/"+pi.Pod.Name, "err", err)
		}
	}
	return nil
}

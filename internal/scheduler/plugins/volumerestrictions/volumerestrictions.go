// Package volumerestrictions is the VolumeRestrictions plugin, after
// kube-scheduler's: a claim with the ReadWriteOncePod access mode is used
// by one pod at most, so a pod is not scheduled while another pod uses
// it. (Upstream's in-tree disk conflicts, for volume types Havre does not
// run, are left out.) It reads informers and the scheduler's snapshot;
// it must never call the API.
package volumerestrictions

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "VolumeRestrictions"

// ErrReasonReadWriteOncePodConflict is upstream's reason.
const ErrReasonReadWriteOncePodConflict = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"

const stateKey framework.StateKey = "PreFilter" + Name

// VolumeRestrictions is the plugin.
type VolumeRestrictions struct {
	claims corelisters.PersistentVolumeClaimLister
}

var (
	_ framework.PreFilterPlugin     = (*VolumeRestrictions)(nil)
	_ framework.FilterPlugin        = (*VolumeRestrictions)(nil)
	_ framework.PreFilterExtensions = (*VolumeRestrictions)(nil)
	_ framework.EnqueueExtensions   = (*VolumeRestrictions)(nil)
)

// New builds the plugin on the handle's informers; without informers it
// returns nil: the plugin is left out.
func New(h framework.Handle) *VolumeRestrictions {
	f := h.SharedInformerFactory()
	if f == nil {
		return nil
	}
	return &VolumeRestrictions{claims: f.Core().V1().PersistentVolumeClaims().Lister()}
}

// Name returns the plugin's name.
func (*VolumeRestrictions) Name() string { return Name }

// EventsToRegister: pods going away, nodes coming, claims coming or
// changing.
func (*VolumeRestrictions) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.Pod, ActionType: framework.Delete},
		{Resource: framework.Node, ActionType: framework.Add},
		{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add | framework.UpdateObject},
	}
}

// preFilterState: the pod's ReadWriteOncePod claims (namespace/name), and
// how many scheduled pods use one of them.
type preFilterState struct {
	claims    sets.Set[string]
	conflicts int
}

func (s *preFilterState) Clone() framework.StateData {
	c := *s
	return &c
}

// PreFilter finds the pod's ReadWriteOncePod claims and counts the
// scheduled pods using them; pods without such claims skip the plugin.
func (pl *VolumeRestrictions) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	claims := sets.New[string]()
	for _, name := range claimNames(pod) {
		pvc, err := pl.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
		}
		if err != nil {
			return nil, framework.AsStatus(err)
		}
		for _, m := range pvc.Spec.AccessModes {
			if m == corev1.ReadWriteOncePod {
				claims.Insert(pod.Namespace + "/" + name)
			}
		}
	}
	if claims.Len() == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	s := &preFilterState{claims: claims}
	for _, n := range nodes {
		for _, pi := range n.Pods {
			s.conflicts += s.uses(pi.Pod)
		}
	}
	state.Write(stateKey, s)
	return nil, nil
}

// uses counts the pod's claims among s.claims.
func (s *preFilterState) uses(pod *corev1.Pod) int {
	n := 0
	for _, name := range claimNames(pod) {
		if s.claims.Has(pod.Namespace + "/" + name) {
			n++
		}
	}
	return n
}

// claimNames lists the claims of a pod's volumes (ephemeral ones too).
func claimNames(pod *corev1.Pod) []string {
	var out []string
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			out = append(out, pod.Name+"-"+v.Name)
		}
	}
	return out
}

// PreFilterExtensions: preemption may remove the pods using the claims.
func (pl *VolumeRestrictions) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod counts a pod added to a node.
func (*VolumeRestrictions) AddPod(_ context.Context, state *framework.CycleState, _ *corev1.Pod, added *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
	s, err := readState(state)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.conflicts += s.uses(added.Pod)
	return nil
}

// RemovePod uncounts a pod removed from a node.
func (*VolumeRestrictions) RemovePod(_ context.Context, state *framework.CycleState, _ *corev1.Pod, removed *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
	s, err := readState(state)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.conflicts -= s.uses(removed.Pod)
	return nil
}

func readState(state *framework.CycleState) (*preFilterState, error) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("reading %q from the cycle state: %w", stateKey, err)
	}
	return d.(*preFilterState), nil
}

// Filter rejects every node while another pod uses one of the pod's
// ReadWriteOncePod claims.
func (*VolumeRestrictions) Filter(_ context.Context, state *framework.CycleState, _ *corev1.Pod, _ *framework.NodeInfo) *framework.Status {
	s, err := readState(state)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s.conflicts > 0 {
		return framework.NewStatus(framework.Unschedulable, ErrReasonReadWriteOncePodConflict)
	}
	return nil
}

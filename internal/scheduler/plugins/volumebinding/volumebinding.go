// Package volumebinding is the VolumeBinding plugin, after
// kube-scheduler's: a pod goes only to a node where its persistent volume
// claims can be had. Bound claims' volumes must be reachable from the node
// (node affinity); unbound claims of WaitForFirstConsumer classes need an
// Available volume there that the PersistentVolume controller would match,
// or dynamic provisioning there (for Havre's local provisioner, the node's
// published CSIStorageCapacity must hold them). Its choices are assumed in
// memory at Reserve, so that concurrent pods do not overcommit a node, and
// carried out at PreBind: volumes are pre-bound to their claims and claims
// to provision get the volume.kubernetes.io/selected-node annotation; then
// the pod waits, before being bound, until every claim is bound.
//
// Its Filter reads informers only; it must never call the API there. The
// API is written in PreBind alone (and VolumeSnapshots are read in
// PreFilter, for the claims restored from one).
package volumebinding

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	volumehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/scheduler/framework"
)

// Name is the plugin's name in configurations.
const Name = "VolumeBinding"

// Upstream's reasons (and Havre's for snapshots, which upstream leaves to
// the provisioner).
const (
	ErrReasonBindConflict   = "node(s) didn't find available persistent volumes to bind"
	ErrReasonNodeConflict   = "node(s) had volume node affinity conflict"
	ErrReasonNotEnoughSpace = "node(s) did not have enough free storage"
	ErrReasonPVNotExist     = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	// ErrReasonSnapshotUnavailable: a claim restores a VolumeSnapshot
	// whose content does not say which node holds it.
	ErrReasonSnapshotUnavailable = "node(s) unavailable for the volume snapshot"
	// ErrUnboundImmediateClaims: an Immediate claim is not bound yet.
	ErrUnboundImmediateClaims = "pod has unbound immediate PersistentVolumeClaims"
)

// DefaultBindTimeoutSeconds is upstream's bindTimeoutSeconds.
const DefaultBindTimeoutSeconds = 600

// noProvisioner is the provisioner of classes of static volumes only.
const noProvisioner = "kubernetes.io/no-provisioner"

// Args are the plugin's arguments (VolumeBindingArgs).
type Args struct {
	// BindTimeoutSeconds bounds PreBind's wait for the claims to be bound.
	BindTimeoutSeconds int64 `json:"bindTimeoutSeconds"`
}

// DefaultArgs are upstream's.
func DefaultArgs() Args { return Args{BindTimeoutSeconds: DefaultBindTimeoutSeconds} }

// Validate checks the arguments as upstream.
func (a Args) Validate() error {
	if a.BindTimeoutSeconds < 0 {
		return fmt.Errorf("bindTimeoutSeconds: Invalid value: %d: invalid BindTimeoutSeconds, should not be a negative value", a.BindTimeoutSeconds)
	}
	return nil
}

// VolumeBinding is the plugin.
type VolumeBinding struct {
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	claims     corelisters.PersistentVolumeClaimLister
	volumes    corelisters.PersistentVolumeLister
	classes    storagelisters.StorageClassLister
	capacities storagelisters.CSIStorageCapacityLister
	assumed    *assumeCache
	// changed is signalled by every claim and volume event: PreBind looks
	// at its claims again then, rather than at its next poll.
	changed *notifier
	// BindTimeout bounds PreBind's wait; PollInterval is how often it
	// looks at the claims when no event says they changed.
	BindTimeout  time.Duration
	PollInterval time.Duration
}

// notifier wakes every waiter at once.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next notify.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

var (
	_ framework.PreFilterPlugin   = (*VolumeBinding)(nil)
	_ framework.FilterPlugin      = (*VolumeBinding)(nil)
	_ framework.ReservePlugin     = (*VolumeBinding)(nil)
	_ framework.PreBindPlugin     = (*VolumeBinding)(nil)
	_ framework.EnqueueExtensions = (*VolumeBinding)(nil)
)

// New builds the plugin on the handle's informers; dyn reads
// VolumeSnapshots (nil: claims restored from a snapshot cannot be
// placed). Without informers it returns nil: the plugin is left out.
func New(h framework.Handle, dyn dynamic.Interface, args Args) *VolumeBinding {
	f := h.SharedInformerFactory()
	if f == nil {
		return nil
	}
	changed := &notifier{}
	wake := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed.notify() },
		UpdateFunc: func(any, any) { changed.notify() },
		DeleteFunc: func(any) { changed.notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{f.Core().V1().PersistentVolumeClaims().Informer(), f.Core().V1().PersistentVolumes().Informer()} {
		if _, err := inf.AddEventHandler(wake); err != nil {
			slog.Warn("scheduler: VolumeBinding watches claims by polling only", "err", err)
		}
	}
	return &VolumeBinding{
		changed:      changed,
		client:       h.ClientSet(),
		dynamic:      dyn,
		claims:       f.Core().V1().PersistentVolumeClaims().Lister(),
		volumes:      f.Core().V1().PersistentVolumes().Lister(),
		classes:      f.Storage().V1().StorageClasses().Lister(),
		capacities:   f.Storage().V1().CSIStorageCapacities().Lister(),
		assumed:      newAssumeCache(),
		BindTimeout:  time.Duration(args.BindTimeoutSeconds) * time.Second,
		PollInterval: time.Second,
	}
}

// Name returns the plugin's name.
func (*VolumeBinding) Name() string { return Name }

// EventsToRegister: claims, volumes, classes and capacities coming or
// changing, and nodes coming or relabelled.
func (*VolumeBinding) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add | framework.UpdateObject},
		{Resource: framework.PersistentVolume, ActionType: framework.Add | framework.UpdateObject},
		{Resource: framework.StorageClass, ActionType: framework.Add | framework.UpdateObject},
		{Resource: framework.CSIStorageCapacity, ActionType: framework.Add | framework.UpdateObject},
		{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel | framework.UpdateNodeTaint},
	}
}

// claimInfo is one unbound WaitForFirstConsumer claim of the pod.
type claimInfo struct {
	pvc   *corev1.PersistentVolumeClaim
	class *storagev1.StorageClass
	size  int64
	// candidates are the volumes of the claim's class.
	candidates []*corev1.PersistentVolume
	// From a clone source: the source's volume (its node affinity binds
	// the new one). From a snapshot: the node holding it, or
	// snapshotUnavailable.
	sourceVolume        *corev1.PersistentVolume
	snapshotNode        string
	snapshotUnavailable bool
}

// podVolumes is what the pod needs on one node: volumes to pre-bind to
// claims, and claims to provision there.
type podVolumes struct {
	staticBindings []staticBinding
	provisions     []*claimInfo
}

type staticBinding struct {
	pv  *corev1.PersistentVolume
	pvc *corev1.PersistentVolumeClaim
}

// stateData is what PreFilter found and what Filter chose per node.
type stateData struct {
	bound   []*corev1.PersistentVolume
	missing bool // a bound claim's volume does not exist
	unbound []*claimInfo
	// perNode is written by Filter (in parallel) and read by Reserve.
	perNode *syncMap[string, *podVolumes]
	// reserved is the node's choice, from Reserve to PreBind.
	reserved *podVolumes
}

func (s *stateData) Clone() framework.StateData { return s }

const stateKey framework.StateKey = "PreFilter" + Name

// PreFilter reads the pod's claims: every one must exist and not be
// deleted, and none may be an unbound claim of an Immediate class. Pods
// without claims skip the plugin.
func (pl *VolumeBinding) PreFilter(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	claims, st := pl.podClaims(pod)
	if st != nil {
		return nil, st
	}
	if len(claims) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	s := &stateData{perNode: newSyncMap[string, *podVolumes]()}
	for _, pvc := range claims {
		if pvc.Spec.VolumeName != "" {
			pv, err := pl.volumes.Get(pvc.Spec.VolumeName)
			if err != nil {
				s.missing = true
				continue
			}
			s.bound = append(s.bound, pv)
			continue
		}
		ci, st := pl.unboundClaim(ctx, pvc)
		if st != nil {
			return nil, st
		}
		s.unbound = append(s.unbound, ci)
	}
	state.Write(stateKey, s)
	return nil, nil
}

// podClaims lists the pod's claims (its ephemeral volumes' too).
func (pl *VolumeBinding) podClaims(pod *corev1.Pod) ([]*corev1.PersistentVolumeClaim, *framework.Status) {
	var out []*corev1.PersistentVolumeClaim
	seen := map[string]bool{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		name, ephemeral := "", false
		switch {
		case v.PersistentVolumeClaim != nil:
			name = v.PersistentVolumeClaim.ClaimName
		case v.Ephemeral != nil:
			name, ephemeral = pod.Name+"-"+v.Name, true
		default:
			continue
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		pvc, err := pl.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			if ephemeral {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable,
					fmt.Sprintf("waiting for ephemeral volume controller to create the persistentvolumeclaim %q", name))
			}
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q not found", name))
		}
		if err != nil {
			return nil, framework.AsStatus(err)
		}
		if pvc.DeletionTimestamp != nil {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name))
		}
		if ephemeral && !metav1.IsControlledBy(pvc, pod) {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable,
				fmt.Sprintf("PVC %s/%s was not created for pod %s/%s (pod is not owner)", pvc.Namespace, pvc.Name, pod.Namespace, pod.Name))
		}
		out = append(out, pvc)
	}
	return out, nil
}

// unboundClaim describes an unbound claim, which must be of a
// WaitForFirstConsumer class.
func (pl *VolumeBinding) unboundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (*claimInfo, *framework.Status) {
	immediate := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrUnboundImmediateClaims)
	className := claimClass(pvc)
	if className == "" {
		return nil, immediate
	}
	class, err := pl.classes.Get(className)
	if apierrors.IsNotFound(err) {
		return nil, immediate
	}
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return nil, immediate
	}
	ci := &claimInfo{pvc: pvc, class: class}
	all, err := pl.volumes.List(labels.Everything())
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	for _, pv := range all {
		if volumehelpers.GetPersistentVolumeClass(pv) == class.Name {
			ci.candidates = append(ci.candidates, pv)
		}
	}
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		ci.size = q.Value()
	}
	src := pvc.Spec.DataSourceRef
	if src == nil && pvc.Spec.DataSource != nil {
		src = &corev1.TypedObjectReference{APIGroup: pvc.Spec.DataSource.APIGroup, Kind: pvc.Spec.DataSource.Kind, Name: pvc.Spec.DataSource.Name}
	}
	switch {
	case src == nil:
	case src.Kind == "PersistentVolumeClaim" && (src.APIGroup == nil || *src.APIGroup == ""):
		ns := pvc.Namespace
		if src.Namespace != nil && *src.Namespace != "" {
			ns = *src.Namespace
		}
		source, err := pl.claims.PersistentVolumeClaims(ns).Get(src.Name)
		if err != nil || source.Spec.VolumeName == "" {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable,
				fmt.Sprintf("source persistentvolumeclaim %q of persistentvolumeclaim %q is not bound", src.Name, pvc.Name))
		}
		if ci.sourceVolume, err = pl.volumes.Get(source.Spec.VolumeName); err != nil {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonPVNotExist)
		}
	case src.Kind == "VolumeSnapshot" && src.APIGroup != nil && *src.APIGroup == snapshotGroup:
		ns := pvc.Namespace
		if src.Namespace != nil && *src.Namespace != "" {
			ns = *src.Namespace
		}
		ci.snapshotNode = pl.snapshotNode(ctx, ns, src.Name)
		ci.snapshotUnavailable = ci.snapshotNode == ""
	}
	return ci, nil
}

// claimClass is the claim's class name (the beta annotation wins, as
// upstream).
func claimClass(pvc *corev1.PersistentVolumeClaim) string {
	if c, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return c
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

// PreFilterExtensions: other pods do not change what volumes fit.
func (*VolumeBinding) PreFilterExtensions() framework.PreFilterExtensions { return nil }

func readState(state *framework.CycleState) (*stateData, *framework.Status) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	return d.(*stateData), nil
}

// Filter checks the bound claims' volumes reach the node, and finds how
// each unbound claim would be had there.
func (pl *VolumeBinding) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	s, st := readState(state)
	if st != nil {
		return st
	}
	node := nodeInfo.Node()
	var reasons []string
	if s.missing {
		reasons = append(reasons, ErrReasonPVNotExist)
	}
	for _, pv := range s.bound {
		if err := checkNodeAffinity(pv, node.Labels); err != nil {
			reasons = append(reasons, ErrReasonNodeConflict)
			break
		}
	}
	if len(reasons) > 0 {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reasons...)
	}
	if len(s.unbound) == 0 {
		return nil
	}
	vols, reason := pl.findVolumes(pod, s.unbound, node)
	if reason != "" {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reason)
	}
	s.perNode.Store(node.Name, vols)
	return nil
}

// Reserve assumes the node's choices, so that other pods do not count
// the same volumes or capacity.
func (pl *VolumeBinding) Reserve(_ context.Context, state *framework.CycleState, pod *corev1.Pod, nodeName string) *framework.Status {
	s, st := readState(state)
	if st != nil || len(s.unbound) == 0 {
		return nil
	}
	vols, ok := s.perNode.Load(nodeName)
	if !ok {
		return framework.AsStatus(fmt.Errorf("no volume choice was made for node %q: the pod is retried", nodeName))
	}
	if err := pl.assumed.assume(pod, nodeName, vols); err != nil {
		return framework.AsStatus(err)
	}
	s.reserved = vols
	return nil
}

// Unreserve forgets the pod's assumed choices.
func (pl *VolumeBinding) Unreserve(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, _ string) {
	pl.assumed.forget(pod)
}

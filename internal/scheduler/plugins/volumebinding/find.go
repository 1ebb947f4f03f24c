package volumebinding

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	volumehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/volume"
)

// The snapshot API the claims restore from (installed as CRDs).
const snapshotGroup = "snapshot.storage.k8s.io"

var (
	volumeSnapshots        = schema.GroupVersionResource{Group: snapshotGroup, Version: "v1", Resource: "volumesnapshots"}
	volumeSnapshotContents = schema.GroupVersionResource{Group: snapshotGroup, Version: "v1", Resource: "volumesnapshotcontents"}
)

func checkNodeAffinity(pv *corev1.PersistentVolume, nodeLabels map[string]string) error {
	return volumehelpers.CheckNodeAffinity(pv, nodeLabels)
}

// findVolumes finds, for each unbound claim, an Available volume the
// PersistentVolume controller would bind to it and that reaches the node,
// else dynamic provisioning on the node; the reason is empty when every
// claim is satisfied.
func (pl *VolumeBinding) findVolumes(pod *corev1.Pod, claims []*claimInfo, node *corev1.Node) (*podVolumes, string) {
	vols := &podVolumes{}
	excluded := pl.assumed.assumedVolumes(pod)
	for _, ci := range claims {
		if selected, ok := ci.pvc.Annotations[volume.AnnSelectedNode]; ok {
			// Provisioning was asked for already: only there.
			if selected != node.Name {
				return nil, ErrReasonBindConflict
			}
			vols.provisions = append(vols.provisions, ci)
			continue
		}
		if pv := pl.matchVolume(ci, node, excluded); pv != nil {
			excluded[pv.Name] = pv
			vols.staticBindings = append(vols.staticBindings, staticBinding{pv: pv, pvc: ci.pvc})
			continue
		}
		vols.provisions = append(vols.provisions, ci)
	}
	for _, ci := range vols.provisions {
		if reason := provisionableOn(ci, node); reason != "" {
			return nil, reason
		}
	}
	if !pl.hasCapacity(pod, vols.provisions, node) {
		return nil, ErrReasonNotEnoughSpace
	}
	return vols, ""
}

// matchVolume is the smallest Available volume of the claim's class that
// matches it (access modes, size, selector, volume mode) and reaches the
// node, or a volume pre-bound to the claim.
func (pl *VolumeBinding) matchVolume(ci *claimInfo, node *corev1.Node, excluded map[string]*corev1.PersistentVolume) *corev1.PersistentVolume {
	if len(ci.candidates) == 0 {
		return nil
	}
	pv, err := volumehelpers.FindMatchingVolume(ci.pvc, ci.candidates, node, excluded, false, true)
	if err != nil {
		return nil
	}
	return pv
}

// provisionableOn tells why a claim cannot be provisioned on the node:
// its class provisions nothing or not there, or its data source is
// elsewhere.
func provisionableOn(ci *claimInfo, node *corev1.Node) string {
	if ci.class.Provisioner == noProvisioner || ci.class.Provisioner == "" {
		return ErrReasonBindConflict
	}
	if !matchTopology(ci.class.AllowedTopologies, node.Labels) {
		return ErrReasonBindConflict
	}
	if ci.sourceVolume != nil && checkNodeAffinity(ci.sourceVolume, node.Labels) != nil {
		return ErrReasonNodeConflict
	}
	if ci.snapshotUnavailable || ci.snapshotNode != "" && ci.snapshotNode != node.Name {
		return ErrReasonSnapshotUnavailable
	}
	return ""
}

// matchTopology reports whether the node's labels match one of the
// class's allowed topologies (none: every node).
func matchTopology(terms []corev1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, term := range terms {
		ok := true
		for _, req := range term.MatchLabelExpressions {
			v, has := nodeLabels[req.Key]
			if !has || !contains(req.Values, v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// hasCapacity checks the node's published capacity per class: for
// Havre's local provisioner a CSIStorageCapacity in kube-system for the
// class whose topology matches the node must hold the pod's claims of the
// class plus the claims assumed there and not yet provisioned (and each
// must fit its maximumVolumeSize). Other provisioners are checked only
// when capacities are published for their classes.
func (pl *VolumeBinding) hasCapacity(pod *corev1.Pod, provisions []*claimInfo, node *corev1.Node) bool {
	byClass := map[string][]*claimInfo{}
	var order []string
	for _, ci := range provisions {
		if byClass[ci.class.Name] == nil {
			order = append(order, ci.class.Name)
		}
		byClass[ci.class.Name] = append(byClass[ci.class.Name], ci)
	}
	for _, className := range order {
		cis := byClass[className]
		class := cis[0].class
		var caps []*storagev1.CSIStorageCapacity
		var err error
		if class.Provisioner == volume.Provisioner {
			caps, err = pl.capacities.CSIStorageCapacities(volume.CapacityNamespace).List(labels.Everything())
		} else {
			caps, err = pl.capacities.List(labels.Everything())
		}
		if err != nil {
			return false
		}
		var sizes []int64
		own := map[string]bool{}
		for _, ci := range cis {
			own[ci.pvc.Namespace+"/"+ci.pvc.Name] = true
		}
		total := pl.assumed.pendingSize(pod, node.Name, className, func(namespace, name string) bool {
			return own[namespace+"/"+name] || pl.isProvisioned(namespace, name)
		})
		for _, ci := range cis {
			sizes = append(sizes, ci.size)
			total += ci.size
		}
		published, fits := false, false
		for _, c := range caps {
			if c.StorageClassName != className {
				continue
			}
			published = true
			if topologyMatches(c.NodeTopology, node.Labels) && capacityHolds(c, sizes, total) {
				fits = true
				break
			}
		}
		if !fits && (published || class.Provisioner == volume.Provisioner) {
			return false
		}
	}
	return true
}

func topologyMatches(sel *metav1.LabelSelector, nodeLabels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(nodeLabels))
}

// capacityHolds: unset capacity and maximum size mean nothing is
// available, as upstream.
func capacityHolds(c *storagev1.CSIStorageCapacity, sizes []int64, total int64) bool {
	if c.Capacity == nil && c.MaximumVolumeSize == nil {
		return false
	}
	if c.MaximumVolumeSize != nil {
		for _, s := range sizes {
			if c.MaximumVolumeSize.Value() < s {
				return false
			}
		}
	}
	return c.Capacity == nil || c.Capacity.Value() >= total
}

// isProvisioned reports whether an assumed claim got its volume (or went
// away): it no longer takes room from the published capacity.
func (pl *VolumeBinding) isProvisioned(namespace, name string) bool {
	pvc, err := pl.claims.PersistentVolumeClaims(namespace).Get(name)
	return err != nil || pvc.Spec.VolumeName != ""
}

// snapshotNode is the node holding a VolumeSnapshot's data: the
// havre.io/node annotation of its bound content; "" when unknown.
func (pl *VolumeBinding) snapshotNode(ctx context.Context, namespace, name string) string {
	if pl.dynamic == nil {
		return ""
	}
	snap, err := pl.dynamic.Resource(volumeSnapshots).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	content, _, _ := unstructured.NestedString(snap.Object, "status", "boundVolumeSnapshotContentName")
	if content == "" {
		return ""
	}
	c, err := pl.dynamic.Resource(volumeSnapshotContents).Get(ctx, content, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return c.GetAnnotations()[volume.AnnSnapshotNode]
}

// syncMap is a map Filters write in parallel.
type syncMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func newSyncMap[K comparable, V any]() *syncMap[K, V] { return &syncMap[K, V]{m: map[K]V{}} }

func (s *syncMap[K, V]) Store(k K, v V) {
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

func (s *syncMap[K, V]) Load(k K) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

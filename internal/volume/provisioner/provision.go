package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/internal/volume/local"
)

// The snapshot API (served from CRDs).
var (
	snapshotsResource = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	contentsResource  = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

// errNotOurs: the claim is not for this provisioner on this node (now).
var errNotOurs = errors.New("not ours")

// syncClaim provisions a claim selected for this node, or grows its
// volume.
func (p *Provisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if claim.Spec.VolumeName != "" {
		return p.syncResize(ctx, claim)
	}
	if claim.DeletionTimestamp != nil || claim.Annotations[volume.AnnSelectedNode] != p.o.NodeName ||
		claim.Annotations[volume.AnnStorageProvisioner] != volume.Provisioner {
		return nil
	}
	class, ok := p.class(claim)
	if !ok {
		return nil
	}
	pvName := "pvc-" + string(claim.UID)
	if _, err := p.volumes.Get(pvName); err == nil {
		return nil // provisioned; the PersistentVolume controller binds it
	}
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "Provisioning", "External provisioner is provisioning volume for claim %q", key)
	pv, err := p.provision(ctx, claim, pvName)
	if err != nil {
		if errors.Is(err, errNotOurs) {
			return nil
		}
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "ProvisioningFailed", "failed to provision volume with StorageClass %q: %v", class.Name, err)
		if p.failed(ctx, claim) {
			return nil // back to the scheduler
		}
		return err
	}
	p.mu.Lock()
	delete(p.failures, claim.UID)
	p.mu.Unlock()
	p.recorder.Eventf(claim, corev1.EventTypeNormal, "ProvisioningSucceeded", "Successfully provisioned volume %s", pv.Name)
	if !p.o.Backing.EnforcesSize() {
		size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
		p.recorder.Eventf(claim, corev1.EventTypeWarning, "SizeNotEnforced",
			"Volume %s is a plain directory on node %s: its size of %s is not enforced (give the node's --volumes-dir a btrfs or xfs filesystem, or use --volume-backing loop)",
			pv.Name, p.o.NodeName, size.String())
	}
	slog.Info("provisioned a local volume", "claim", key, "volume", pv.Name, "backing", p.o.Backing.Kind())
	p.kickCapacity()
	return nil
}

// failed counts a failure to provision a claim; after MaxFailures it hands
// the claim back to the scheduler (removes the selected node, as
// external-provisioner does to reschedule) and reports true.
func (p *Provisioner) failed(ctx context.Context, claim *corev1.PersistentVolumeClaim) bool {
	p.mu.Lock()
	p.failures[claim.UID]++
	n := p.failures[claim.UID]
	p.mu.Unlock()
	if n < p.o.MaxFailures {
		return false
	}
	// Nothing of a failed attempt stays on the node.
	if err := p.o.Backing.Delete(ctx, "pvc-"+string(claim.UID)); err != nil {
		slog.Warn("removing the volume of a failed claim", "claim", claim.Namespace+"/"+claim.Name, "err", err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, volume.AnnSelectedNode)
	_, err := p.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Patch(ctx, claim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		slog.Warn("handing a claim back to the scheduler", "claim", claim.Namespace+"/"+claim.Name, "err", err)
		return false
	}
	p.mu.Lock()
	delete(p.failures, claim.UID)
	p.mu.Unlock()
	slog.Info("handed a claim that failed to provision back to the scheduler", "claim", claim.Namespace+"/"+claim.Name, "node", p.o.NodeName, "failures", n)
	return true
}

// provision makes the volume of a claim and its PersistentVolume.
func (p *Provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, pvName string) (*corev1.PersistentVolume, error) {
	class, _ := p.class(claim)
	size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.Sign() <= 0 {
		return nil, errors.New("the claim requests no storage: set spec.resources.requests.storage")
	}
	if len(class.Parameters) > 0 {
		for k := range class.Parameters {
			return nil, fmt.Errorf("invalid parameter %q: %s takes none", k, volume.Provisioner)
		}
	}
	if claim.Spec.Selector != nil {
		return nil, errors.New("claim Selector is not supported")
	}
	source, err := p.dataSource(ctx, claim, size)
	if err != nil {
		return nil, err
	}
	var path string
	if source == nil {
		path, err = p.o.Backing.Create(ctx, pvName, size.Value())
	} else {
		path, err = p.o.Backing.CreateFrom(ctx, pvName, size.Value(), *source, progressLog(pvName))
	}
	if err != nil {
		return nil, err
	}
	pv := p.newVolume(claim, class.ReclaimPolicy, class.MountOptions, pvName, path, size)
	created, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return pv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saving PersistentVolume %s: %w", pvName, err)
	}
	return created, nil
}

// newVolume is the PersistentVolume of a provisioned claim.
func (p *Provisioner) newVolume(claim *corev1.PersistentVolumeClaim, reclaim *corev1.PersistentVolumeReclaimPolicy, mountOptions []string, name, path string, size resource.Quantity) *corev1.PersistentVolume {
	policy := corev1.PersistentVolumeReclaimDelete
	if reclaim != nil {
		policy = *reclaim
	}
	mode := corev1.PersistentVolumeFilesystem
	if claim.Spec.VolumeMode != nil {
		mode = *claim.Spec.VolumeMode
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				volume.AnnProvisionedBy: volume.Provisioner,
				volume.AnnBacking:       p.o.Backing.Kind(),
			},
			Finalizers: []string{Finalizer},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   claim.Spec.AccessModes,
			VolumeMode:                    &mode,
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              claimClass(claim),
			MountOptions:                  mountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.o.NodeName}}},
			}}}},
		},
	}
}

// dataSource is where a claim's data comes from (nil: an empty volume).
func (p *Provisioner) dataSource(ctx context.Context, claim *corev1.PersistentVolumeClaim, size resource.Quantity) (*local.Source, error) {
	var kind, group, name string
	switch {
	case claim.Spec.DataSourceRef != nil:
		ref := claim.Spec.DataSourceRef
		if ref.Namespace != nil && *ref.Namespace != "" && *ref.Namespace != claim.Namespace {
			return nil, errors.New("dataSourceRef in another namespace is not supported")
		}
		kind, name = ref.Kind, ref.Name
		if ref.APIGroup != nil {
			group = *ref.APIGroup
		}
	case claim.Spec.DataSource != nil:
		kind, name = claim.Spec.DataSource.Kind, claim.Spec.DataSource.Name
		if claim.Spec.DataSource.APIGroup != nil {
			group = *claim.Spec.DataSource.APIGroup
		}
	default:
		return nil, nil
	}
	switch {
	case kind == "PersistentVolumeClaim" && group == "":
		return p.cloneSource(claim, name, size)
	case kind == "VolumeSnapshot" && group == snapshotsResource.Group:
		return p.snapshotSource(ctx, claim, name, size)
	}
	return nil, fmt.Errorf("the source %s %s of group %q is not supported: use a PersistentVolumeClaim or a VolumeSnapshot", kind, name, group)
}

func (p *Provisioner) cloneSource(claim *corev1.PersistentVolumeClaim, name string, size resource.Quantity) (*local.Source, error) {
	src, err := p.claims.PersistentVolumeClaims(claim.Namespace).Get(name)
	if err != nil {
		return nil, fmt.Errorf("error getting PVC %s (namespace %q) from informer: %w", name, claim.Namespace, err)
	}
	if src.Status.Phase != corev1.ClaimBound || src.Spec.VolumeName == "" {
		return nil, fmt.Errorf("the source PVC %s is not bound", name)
	}
	if claimClass(src) != claimClass(claim) {
		return nil, fmt.Errorf("the source PVC and destination PVCs must be in the same storage class for cloning.  Source is in %q, but new PVC is in %q", claimClass(src), claimClass(claim))
	}
	pv, err := p.volumes.Get(src.Spec.VolumeName)
	if err != nil {
		return nil, fmt.Errorf("the volume %s of the source PVC %s: %w", src.Spec.VolumeName, name, err)
	}
	if pv.Annotations[volume.AnnProvisionedBy] != volume.Provisioner {
		return nil, fmt.Errorf("the source PVC %s is not a volume of %s", name, volume.Provisioner)
	}
	if n := volumeNode(pv); n != p.o.NodeName {
		return nil, fmt.Errorf("the source PVC %s is on node %s, not on %s: a clone is provisioned on its source's node", name, n, p.o.NodeName)
	}
	if c, ok := src.Status.Capacity[corev1.ResourceStorage]; ok && size.Cmp(c) < 0 {
		return nil, fmt.Errorf("error, new PVC request must be greater than or equal in size to the specified PVC data source, requested %v but source is %v", size.Value(), c.Value())
	}
	return &local.Source{Volume: pv.Name}, nil
}

func (p *Provisioner) snapshotSource(ctx context.Context, claim *corev1.PersistentVolumeClaim, name string, size resource.Quantity) (*local.Source, error) {
	if p.o.Dynamic == nil {
		return nil, errors.New("the snapshot API is not available to this node")
	}
	snap, err := p.o.Dynamic.Resource(snapshotsResource).Namespace(claim.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("error getting snapshot %s from api server: %w", name, err)
	}
	ready, _, _ := unstructuredBool(snap.Object, "status", "readyToUse")
	if !ready {
		return nil, fmt.Errorf("snapshot %s is not Ready", name)
	}
	contentName, _, _ := unstructuredString(snap.Object, "status", "boundVolumeSnapshotContentName")
	if contentName == "" {
		return nil, fmt.Errorf("snapshot %s not bound", name)
	}
	content, err := p.o.Dynamic.Resource(contentsResource).Get(ctx, contentName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("error getting snapshotcontent %s for snapshot %s/%s from api server: %w", contentName, claim.Namespace, name, err)
	}
	if driver, _, _ := unstructuredString(content.Object, "spec", "driver"); driver != volume.Provisioner {
		return nil, fmt.Errorf("snapshot %s is of driver %q, not %s", name, driver, volume.Provisioner)
	}
	if n := content.GetAnnotations()[volume.AnnSnapshotNode]; n != p.o.NodeName {
		return nil, fmt.Errorf("snapshot %s is on node %s, not on %s: a restore is provisioned on its snapshot's node", name, n, p.o.NodeName)
	}
	if rs, ok, _ := unstructuredInt(content.Object, "status", "restoreSize"); ok && size.Value() < rs {
		return nil, fmt.Errorf("requested volume size %d is less than the size %d for the source snapshot %s", size.Value(), rs, name)
	}
	return &local.Source{Snapshot: contentName}, nil
}

// progressLog logs a copy's progress every tenth of the way.
func progressLog(pvName string) local.Progress {
	last := int64(-1)
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		if tenth := done * 10 / total; tenth != last {
			last = tenth
			slog.Info("copying data into a new volume", "volume", pvName, "done", done, "total", total)
		}
	}
}

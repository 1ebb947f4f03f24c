package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/storage/ephemeral"
	volumehelpers "k8s.io/component-helpers/storage/volume"
)

// Getter reads claims and volumes.
type Getter interface {
	Claim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	Volume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
	// NodeLabels are this node's labels, for the volumes' node affinity
	// (nil: not checked).
	NodeLabels(ctx context.Context) (map[string]string, error)
}

// ClientGetter reads claims and volumes from the API, as the kubelet's
// volume manager does (a GET of each when a pod's volumes are set up).
// With a NodeName, NodeLabels reads that Node's labels.
type ClientGetter struct {
	Client   kubernetes.Interface
	NodeName string
}

// NodeLabels returns the labels of the node the volumes are mounted on,
// or nil (no check of the volumes' node affinity) without a NodeName.
func (g ClientGetter) NodeLabels(ctx context.Context) (map[string]string, error) {
	if g.NodeName == "" {
		return nil, nil
	}
	n, err := g.Client.CoreV1().Nodes().Get(ctx, g.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return n.Labels, nil
}

func (g ClientGetter) Claim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	return g.Client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (g ClientGetter) Volume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	return g.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}

// ClaimOf returns the claim a pod volume uses: a persistentVolumeClaim
// volume's, or a generic ephemeral volume's (`<pod>-<volume>`, made by
// the ephemeral volume controller). ok is false for other volumes.
func ClaimOf(pod *corev1.Pod, vol *corev1.Volume) (name string, readOnly, isEphemeral, ok bool) {
	switch {
	case vol.PersistentVolumeClaim != nil:
		return vol.PersistentVolumeClaim.ClaimName, vol.PersistentVolumeClaim.ReadOnly, false, true
	case vol.Ephemeral != nil:
		return ephemeral.VolumeClaimName(pod, vol), false, true, true
	}
	return "", false, false, false
}

// Claim is a pod's claim volume resolved to its bound PersistentVolume.
type Claim struct {
	// Volume is the pod's volume; ClaimName its claim (in the pod's
	// namespace); PV the bound PersistentVolume.
	Volume, ClaimName string
	PV                *corev1.PersistentVolume
	// Path is the host directory to bind-mount.
	Path string
	// ReadOnly: the pod's volume source says readOnly (every mount of it
	// is read-only).
	ReadOnly bool
	// Ownership: the pod's fsGroup applies (a `local` volume; not a
	// hostPath one, as upstream's plugins).
	Ownership bool
}

// Resolve finds the claim of a pod's persistentVolumeClaim or ephemeral
// volume and its bound PersistentVolume, checking them as the kubelet's
// volume manager does. An error means the volume cannot be mounted yet:
// the claim is missing, being deleted or not bound, an ephemeral claim is
// not the pod's, the volume's node affinity excludes this node, it is of a
// type Havre does not mount, or its directory is missing. The caller retries with back-off and says why in a
// FailedMount event.
func Resolve(ctx context.Context, g Getter, pod *corev1.Pod, vol *corev1.Volume) (*Claim, error) {
	name, readOnly, isEphemeral, ok := ClaimOf(pod, vol)
	if !ok {
		return nil, fmt.Errorf("volume %q is not a claim", vol.Name)
	}
	wrap := func(err error) error {
		return fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, name, err)
	}
	pvc, err := g.Claim(ctx, pod.Namespace, name)
	if err != nil {
		return nil, wrap(fmt.Errorf("failed to fetch PVC from API server: %w", err))
	}
	switch {
	case pvc.DeletionTimestamp != nil:
		return nil, wrap(errors.New("PVC is being deleted"))
	case pvc.Status.Phase != corev1.ClaimBound:
		return nil, wrap(errors.New("PVC is not bound"))
	case pvc.Spec.VolumeName == "":
		return nil, wrap(errors.New("PVC has empty pvc.Spec.VolumeName"))
	}
	if isEphemeral {
		if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
			return nil, err
		}
	}
	pv, err := g.Volume(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return nil, wrap(fmt.Errorf("failed to fetch PV %s from API server: %w", pvc.Spec.VolumeName, err))
	}
	switch {
	case pv.Spec.ClaimRef == nil:
		return nil, wrap(fmt.Errorf("found PV object %s but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim", pv.Name))
	case pv.Spec.ClaimRef.UID != pvc.UID:
		return nil, wrap(fmt.Errorf("found PV object %s but its pv.Spec.ClaimRef.UID %s does not point to claim.UID %s", pv.Name, pv.Spec.ClaimRef.UID, pvc.UID))
	}
	if pv.Spec.NodeAffinity != nil {
		labels, err := g.NodeLabels(ctx)
		if err == nil && labels != nil {
			err = volumehelpers.CheckNodeAffinity(pv, labels)
		}
		if err != nil {
			return nil, fmt.Errorf("MountVolume.NodeAffinity check failed for volume %q : %w", pv.Name, err)
		}
	}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, fmt.Errorf("volume %s has volumeMode %s, but is specified in volumeMounts (block volumes are not supported by Havre)", vol.Name, corev1.PersistentVolumeBlock)
	}
	c := &Claim{Volume: vol.Name, ClaimName: name, PV: pv, ReadOnly: readOnly}
	switch {
	case pv.Spec.Local != nil:
		c.Path, c.Ownership = pv.Spec.Local.Path, true
	case pv.Spec.HostPath != nil:
		c.Path = pv.Spec.HostPath.Path
	default:
		return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q (PersistentVolume %s): volume type not supported by Havre (it mounts local and hostPath PersistentVolumes)", vol.Name, pv.Name)
	}
	fi, err := os.Stat(c.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("MountVolume.NewMounter initialization failed for volume %q : path %q does not exist", pv.Name, c.Path)
	case err != nil:
		return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", pv.Name, err)
	case pv.Spec.Local != nil && !fi.IsDir():
		return nil, fmt.Errorf("MountVolume.SetUp failed for volume %q : path %q is not a directory (block devices are not supported by Havre)", pv.Name, c.Path)
	}
	return c, nil
}

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/volume"
)

// The storage admission plugins of kube-apiserver, on claims and volumes:
// DefaultStorageClass, StorageObjectInUseProtection and
// PersistentVolumeClaimResize.

// betaAnnDefaultClass is the older name of volume.AnnDefaultClass, which
// upstream still honours.
const betaAnnDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"

var (
	claimsResource  = schema.GroupResource{Resource: "persistentvolumeclaims"}
	volumesResource = schema.GroupResource{Resource: "persistentvolumes"}
)

// admitClaimCreate gives a claim that names no class the default one
// (DefaultStorageClass) and the pvc-protection finalizer
// (StorageObjectInUseProtection).
func (s *Server) admitClaimCreate(ctx context.Context, obj runtime.Object) error {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	if !storagehelpers.PersistentVolumeClaimHasClass(pvc) {
		def, err := s.defaultStorageClass(ctx)
		if err != nil {
			return apierrors.NewForbidden(claimsResource, pvc.Name, fmt.Errorf("failed to get default storage class: %w", err))
		}
		if def != nil {
			pvc.Spec.StorageClassName = &def.Name
		}
	}
	addFinalizer(&pvc.Finalizers, volume.PVCProtectionFinalizer)
	return nil
}

// admitVolumeCreate gives a new volume the pv-protection finalizer
// (StorageObjectInUseProtection).
func admitVolumeCreate(_ context.Context, obj runtime.Object) error {
	if pv, ok := obj.(*corev1.PersistentVolume); ok {
		addFinalizer(&pv.Finalizers, volume.PVProtectionFinalizer)
	}
	return nil
}

func addFinalizer(finalizers *[]string, f string) {
	if !slices.Contains(*finalizers, f) {
		*finalizers = append(*finalizers, f)
	}
}

// admitClaimUpdate is PersistentVolumeClaimResize: a claim's storage
// request may grow only once it is bound, and only when its class (the
// same before and after) allows volume expansion. Shrinking is left to
// validation.
func (s *Server) admitClaimUpdate(ctx context.Context, obj, old runtime.Object) error {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	oldPVC := old.(*corev1.PersistentVolumeClaim)
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	oldSize := oldPVC.Spec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) <= 0 {
		return nil
	}
	if oldPVC.Status.Phase != corev1.ClaimBound {
		return apierrors.NewForbidden(claimsResource, pvc.Name, errors.New("Only bound persistent volume claims can be expanded"))
	}
	if !s.allowResize(ctx, pvc, oldPVC) {
		return apierrors.NewForbidden(claimsResource, pvc.Name, errors.New("only dynamically provisioned pvc can be resized and "+
			"the storageclass that provisions the pvc must support resize"))
	}
	return nil
}

// allowResize reports whether the claim's class, unchanged by the update,
// has allowVolumeExpansion.
func (s *Server) allowResize(ctx context.Context, pvc, oldPVC *corev1.PersistentVolumeClaim) bool {
	class := storagehelpers.GetPersistentVolumeClaimClass(pvc)
	if class == "" || class != storagehelpers.GetPersistentVolumeClaimClass(oldPVC) {
		return false
	}
	h := s.handler(storagev1.GroupName, "v1", "storageclasses")
	if h == nil {
		return false
	}
	obj, err := h.objs.get(ctx, "", class)
	if err != nil {
		return false
	}
	sc := obj.(*storagev1.StorageClass)
	return sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
}

// defaultStorageClass returns the default StorageClass, or nil: among
// several, the newest, then the first by name, as upstream chooses.
func (s *Server) defaultStorageClass(ctx context.Context) (*storagev1.StorageClass, error) {
	h := s.handler(storagev1.GroupName, "v1", "storageclasses")
	if h == nil {
		return nil, nil
	}
	res, err := h.objs.store.List(ctx, h.objs.listPrefix(""), storage.ListOptions{})
	if err != nil {
		return nil, h.objs.storageError(err, "")
	}
	var defaults []*storagev1.StorageClass
	for _, kv := range res.KVs {
		obj, err := h.objs.decode(kv)
		if err != nil {
			return nil, err
		}
		sc := obj.(*storagev1.StorageClass)
		if isDefaultClass(sc) {
			defaults = append(defaults, sc)
		}
	}
	if len(defaults) == 0 {
		return nil, nil
	}
	slices.SortFunc(defaults, func(a, b *storagev1.StorageClass) int {
		if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return defaults[0], nil
}

// isDefaultClass reports the is-default-class annotation (or its beta
// name) set to "true".
func isDefaultClass(sc *storagev1.StorageClass) bool {
	return sc.Annotations[volume.AnnDefaultClass] == "true" || sc.Annotations[betaAnnDefaultClass] == "true"
}

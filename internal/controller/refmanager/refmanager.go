// Package refmanager adopts and releases the objects a controller selects,
// as kube-controller-manager's ControllerRefManager does: an object whose
// controller reference names the controller is released when its labels no
// longer match the selector; an orphan that matches is adopted by adding a
// controller reference. Objects controlled by someone else are left alone.
//
// Adoption and release are strategic merge patches of
// metadata.ownerReferences (merge key uid) carrying the object's uid as a
// precondition, so a write never lands on a recreated object of the same
// name.
package refmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// PatchFunc applies a strategic merge patch to the named object in the
// controller's namespace.
type PatchFunc func(ctx context.Context, name string, patch []byte) error

// Manager claims objects for one controller object.
type Manager struct {
	// Controller is the owner; Kind its group, version and kind.
	Controller metav1.Object
	Kind       schema.GroupVersionKind
	// Selector selects the objects the controller should own.
	Selector labels.Selector
	// CanAdopt is called once, before the first adoption: it should read
	// the controller afresh (not from a cache) and fail if it is being
	// deleted or was replaced (another UID).
	CanAdopt func(ctx context.Context) error
	// Patch writes adoption and release patches.
	Patch PatchFunc

	once     sync.Once
	adoptErr error
}

// Claim returns the objects of objs the controller owns after adopting the
// matching orphans and releasing the owned objects that no longer match.
// Errors of single objects are aggregated; the objects claimed so far are
// returned with them.
func Claim[T metav1.Object](ctx context.Context, m *Manager, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		ok, err := m.claim(ctx, obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, obj)
		}
	}
	return claimed, utilerrors.NewAggregate(errs)
}

func (m *Manager) claim(ctx context.Context, obj metav1.Object) (bool, error) {
	match := m.Selector.Matches(labels.Set(obj.GetLabels()))
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != m.Controller.GetUID() {
			return false, nil // someone else's
		}
		if match {
			return true, nil
		}
		// Ours, but no longer selected: release it unless we are going away.
		if m.Controller.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := m.release(ctx, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return false, nil
	}
	// An orphan.
	if m.Controller.GetDeletionTimestamp() != nil || !match || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if ns := m.Controller.GetNamespace(); ns != "" && ns != obj.GetNamespace() {
		return false, nil
	}
	if err := m.adopt(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ControllerRef is the controller reference the manager's controller puts
// on the objects it owns.
func (m *Manager) ControllerRef() metav1.OwnerReference {
	return *metav1.NewControllerRef(m.Controller, m.Kind)
}

func (m *Manager) adopt(ctx context.Context, obj metav1.Object) error {
	m.once.Do(func() {
		if m.CanAdopt != nil {
			m.adoptErr = m.CanAdopt(ctx)
		}
	})
	if m.adoptErr != nil {
		return fmt.Errorf("can't adopt %s %s/%s (%s): %w", m.Kind.Kind, obj.GetNamespace(), obj.GetName(), obj.GetUID(), m.adoptErr)
	}
	ref := m.ControllerRef()
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"ownerReferences": []metav1.OwnerReference{ref},
			"uid":             obj.GetUID(),
		},
	})
	if err != nil {
		return err
	}
	return m.Patch(ctx, obj.GetName(), patch)
}

func (m *Manager) release(ctx context.Context, obj metav1.Object) error {
	patch, err := ReleasePatch(m.Controller.GetUID(), obj.GetUID())
	if err != nil {
		return err
	}
	err = m.Patch(ctx, obj.GetName(), patch)
	if apierrors.IsInvalid(err) {
		// The object no longer has the reference, or was recreated:
		// nothing is left to release.
		return nil
	}
	return err
}

// ReleasePatch is the strategic merge patch removing owner's reference from
// the object with uid objUID.
func ReleasePatch(owner, objUID types.UID) ([]byte, error) {
	return json.Marshal(map[string]any{
		"metadata": map[string]any{
			"ownerReferences": []map[string]any{{"$patch": "delete", "uid": owner}},
			"uid":             objUID,
		},
	})
}

// RecheckDeletion returns a CanAdopt function that reads the controller with
// get and refuses adoption when its UID differs from uid or it is being
// deleted, as upstream's RecheckDeletionTimestamp does.
func RecheckDeletion(uid types.UID, get func(ctx context.Context) (metav1.Object, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx)
		if err != nil {
			return err
		}
		if fresh.GetUID() != uid {
			return fmt.Errorf("original %s is gone: got uid %v, wanted %v", fresh.GetName(), fresh.GetUID(), uid)
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s has just been deleted at %v", fresh.GetName(), fresh.GetDeletionTimestamp())
		}
		return nil
	}
}

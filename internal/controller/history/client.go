package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/util/retry"

	"github.com/havre/havre/internal/controller/refmanager"
)

// maxCollisions bounds the renames of one creation: each AlreadyExists with
// other data bumps the collision count and tries again.
const maxCollisions = 100

// History reads revisions from an informer's lister and writes them through
// the API.
type History struct {
	client kubernetes.Interface
	lister appslisters.ControllerRevisionLister
}

// New returns a History over client and lister.
func New(client kubernetes.Interface, lister appslisters.ControllerRevisionLister) *History {
	return &History{client: client, lister: lister}
}

// List returns the revisions in parent's namespace matching selector that
// parent controls or that nobody controls (candidates for adoption).
func (h *History) List(parent metav1.Object, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	all, err := h.lister.ControllerRevisions(parent.GetNamespace()).List(selector)
	if err != nil {
		return nil, err
	}
	var owned []*appsv1.ControllerRevision
	for _, cr := range all {
		if ref := metav1.GetControllerOfNoCopy(cr); ref == nil || ref.UID == parent.GetUID() {
			owned = append(owned, cr)
		}
	}
	return owned, nil
}

// Create creates revision for parent. When a revision of that name exists
// with other data, *collisionCount is incremented and the revision renamed
// with the new hash; when it exists with the same data, it is returned.
func (h *History) Create(ctx context.Context, parent metav1.Object, revision *appsv1.ControllerRevision, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	if collisionCount == nil {
		return nil, errors.New("collisionCount should not be nil")
	}
	clone := revision.DeepCopy()
	clone.Namespace = parent.GetNamespace()
	for range maxCollisions {
		hash := HashControllerRevision(revision, collisionCount)
		clone.Name = ControllerRevisionName(parent.GetName(), hash)
		if clone.Labels == nil {
			clone.Labels = map[string]string{}
		}
		clone.Labels[ControllerRevisionHashLabel] = hash
		created, err := h.client.AppsV1().ControllerRevisions(clone.Namespace).Create(ctx, clone, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return created, err
		}
		exists, err := h.client.AppsV1().ControllerRevisions(clone.Namespace).Get(ctx, clone.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if bytes.Equal(exists.Data.Raw, clone.Data.Raw) {
			return exists, nil
		}
		*collisionCount++
	}
	return nil, fmt.Errorf("creating a revision of %s: %d name collisions", parent.GetName(), maxCollisions)
}

// UpdateRevision sets revision's number to newRevision, retrying on
// conflicts.
func (h *History) UpdateRevision(ctx context.Context, revision *appsv1.ControllerRevision, newRevision int64) (*appsv1.ControllerRevision, error) {
	clone := revision.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if clone.Revision == newRevision {
			return nil
		}
		clone.Revision = newRevision
		updated, err := h.client.AppsV1().ControllerRevisions(clone.Namespace).Update(ctx, clone, metav1.UpdateOptions{})
		if err == nil {
			clone = updated
			return nil
		}
		if fresh, getErr := h.client.AppsV1().ControllerRevisions(clone.Namespace).Get(ctx, clone.Name, metav1.GetOptions{}); getErr == nil {
			clone = fresh
		}
		return err
	})
	return clone, err
}

// Delete deletes revision; one already gone is no error.
func (h *History) Delete(ctx context.Context, revision *appsv1.ControllerRevision) error {
	err := h.client.AppsV1().ControllerRevisions(revision.Namespace).Delete(ctx, revision.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &revision.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// Patch applies a strategic merge patch to the named revision of namespace,
// for refmanager.
func (h *History) Patch(namespace string) refmanager.PatchFunc {
	return func(ctx context.Context, name string, patch []byte) error {
		_, err := h.client.AppsV1().ControllerRevisions(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	}
}

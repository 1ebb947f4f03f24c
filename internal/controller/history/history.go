// Package history keeps the ControllerRevisions of the controllers that
// record their pod templates (StatefulSet, DaemonSet), as
// kube-controller-manager's controller/history does: a revision holds a
// strategic merge patch restoring its owner's template, is named
// <owner>-<hash of the patch> and carries that hash in the
// controller.kubernetes.io/hash label. Name collisions between different
// data are resolved with the owner's status.collisionCount, which is mixed
// into the hash.
package history

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
)

// ControllerRevisionHashLabel is the label holding the hash of a
// ControllerRevision's data.
const ControllerRevisionHashLabel = "controller.kubernetes.io/hash"

// maxPrefix keeps revision names within 253 characters.
const maxPrefix = 223

// ControllerRevisionName returns prefix-hash, the prefix cut to 223
// characters.
func ControllerRevisionName(prefix, hash string) string {
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	return prefix + "-" + hash
}

// HashControllerRevision hashes the revision's raw data (FNV-32) and, when
// probe is not nil, the collision count, and encodes the sum with
// rand.SafeEncodeString so that it reads as no word.
func HashControllerRevision(revision *appsv1.ControllerRevision, probe *int32) string {
	hf := fnv.New32()
	hf.Write(revision.Data.Raw)
	if probe != nil {
		hf.Write([]byte(strconv.FormatInt(int64(*probe), 10)))
	}
	return rand.SafeEncodeString(fmt.Sprint(hf.Sum32()))
}

// NewControllerRevision returns a revision of parent (of kind parentKind)
// holding data, labelled with templateLabels and the data's hash, controlled
// by parent, and named after parent and the hash.
func NewControllerRevision(parent metav1.Object, parentKind schema.GroupVersionKind, templateLabels map[string]string,
	data runtime.RawExtension, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	labels := make(map[string]string, len(templateLabels)+1)
	for k, v := range templateLabels {
		labels[k] = v
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       parent.GetNamespace(),
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(parent, parentKind)},
		},
		Data:     data,
		Revision: revision,
	}
	hash := HashControllerRevision(cr, collisionCount)
	cr.Name = ControllerRevisionName(parent.GetName(), hash)
	cr.Labels[ControllerRevisionHashLabel] = hash
	return cr
}

// SortControllerRevisions sorts revisions by revision number, then
// creation time, then name.
func SortControllerRevisions(revisions []*appsv1.ControllerRevision) {
	sort.SliceStable(revisions, func(i, j int) bool {
		a, b := revisions[i], revisions[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// EqualRevision reports whether two revisions hold the same data (two nil
// revisions are equal). Differing numeric hash labels settle it early.
func EqualRevision(lhs, rhs *appsv1.ControllerRevision) bool {
	if lhs == nil || rhs == nil {
		return lhs == rhs
	}
	lh, lok := numericHash(lhs)
	rh, rok := numericHash(rhs)
	if lok && rok && lh != rh {
		return false
	}
	return bytes.Equal(lhs.Data.Raw, rhs.Data.Raw)
}

// numericHash reads a hash label written as a number (older revisions).
func numericHash(cr *appsv1.ControllerRevision) (uint32, bool) {
	hs, ok := cr.Labels[ControllerRevisionHashLabel]
	if !ok {
		return 0, false
	}
	h, err := strconv.ParseInt(hs, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(h), true
}

// FindEqualRevisions returns the revisions equal to needle, in order.
func FindEqualRevisions(revisions []*appsv1.ControllerRevision, needle *appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	var eq []*appsv1.ControllerRevision
	for _, r := range revisions {
		if EqualRevision(r, needle) {
			eq = append(eq, r)
		}
	}
	return eq
}

// NextRevision is one more than the highest revision number of revisions
// (1 for none).
func NextRevision(revisions []*appsv1.ControllerRevision) int64 {
	var highest int64
	for _, r := range revisions {
		highest = max(highest, r.Revision)
	}
	return highest + 1
}

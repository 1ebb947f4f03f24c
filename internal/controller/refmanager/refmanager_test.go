package refmanager

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var kind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}

func pod(name string, lbl string, owner types.UID) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": lbl}}}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: owner, Controller: new(true)}}
	}
	return p
}

func TestClaim(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		deleting    bool
		canAdopt    error
		patchErr    error
		wantClaimed bool
		wantPatch   string // "adopt", "release" or ""
		wantErr     bool
	}{
		{name: "owned and matching", pod: pod("a", "web", "uid-rs"), wantClaimed: true},
		{name: "owned, no longer matching", pod: pod("a", "other", "uid-rs"), wantPatch: "release"},
		{name: "owned, not matching, controller going away", pod: pod("a", "other", "uid-rs"), deleting: true},
		{name: "someone else's", pod: pod("a", "web", "uid-other")},
		{name: "matching orphan", pod: pod("a", "web", ""), wantClaimed: true, wantPatch: "adopt"},
		{name: "orphan not matching", pod: pod("a", "other", "")},
		{name: "orphan, controller going away", pod: pod("a", "web", ""), deleting: true},
		{name: "orphan, adoption refused", pod: pod("a", "web", ""), canAdopt: errors.New("gone"), wantErr: true},
		{name: "orphan gone meanwhile", pod: pod("a", "web", ""), patchErr: apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "a"), wantPatch: "adopt"},
		{name: "release of a changed object", pod: pod("a", "other", "uid-rs"), patchErr: apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "a", nil), wantPatch: "release"},
		{name: "adoption fails", pod: pod("a", "web", ""), patchErr: errors.New("boom"), wantPatch: "adopt", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := &metav1.ObjectMeta{Name: "rs", Namespace: "ns", UID: "uid-rs"}
			if tc.deleting {
				owner.DeletionTimestamp = new(metav1.Now())
			}
			var patched string
			m := &Manager{
				Controller: owner, Kind: kind, Selector: labels.SelectorFromSet(labels.Set{"app": "web"}),
				CanAdopt: func(context.Context) error { return tc.canAdopt },
				Patch: func(_ context.Context, name string, patch []byte) error {
					var p struct {
						Metadata struct {
							OwnerReferences []map[string]any `json:"ownerReferences"`
							UID             string           `json:"uid"`
						} `json:"metadata"`
					}
					if err := json.Unmarshal(patch, &p); err != nil {
						t.Fatal(err)
					}
					if p.Metadata.UID != "uid-"+name || len(p.Metadata.OwnerReferences) != 1 || p.Metadata.OwnerReferences[0]["uid"] != "uid-rs" {
						t.Errorf("patch %s", patch)
					}
					patched = "adopt"
					if p.Metadata.OwnerReferences[0]["$patch"] == "delete" {
						patched = "release"
					} else if p.Metadata.OwnerReferences[0]["controller"] != true || p.Metadata.OwnerReferences[0]["blockOwnerDeletion"] != true {
						t.Errorf("adoption reference %v", p.Metadata.OwnerReferences[0])
					}
					return tc.patchErr
				},
			}
			claimed, err := Claim(context.Background(), m, []*corev1.Pod{tc.pod})
			if (err != nil) != tc.wantErr {
				t.Errorf("err %v, want error %v", err, tc.wantErr)
			}
			if (len(claimed) == 1) != tc.wantClaimed {
				t.Errorf("claimed %d, want %v", len(claimed), tc.wantClaimed)
			}
			if patched != tc.wantPatch {
				t.Errorf("patch %q, want %q", patched, tc.wantPatch)
			}
		})
	}
}

func TestRecheckDeletion(t *testing.T) {
	for _, tc := range []struct {
		fresh *metav1.ObjectMeta
		want  string
	}{
		{&metav1.ObjectMeta{Name: "rs", UID: "u1"}, ""},
		{&metav1.ObjectMeta{Name: "rs", UID: "u2"}, "is gone"},
		{&metav1.ObjectMeta{Name: "rs", UID: "u1", DeletionTimestamp: new(metav1.Now())}, "has just been deleted"},
	} {
		err := RecheckDeletion("u1", func(context.Context) (metav1.Object, error) { return tc.fresh, nil })(context.Background())
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.fresh, err, tc.want)
		}
	}
}

package apiserver

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage/bolt"
	"github.com/havre/havre/internal/volume"
)

func newStorageTestServer(t *testing.T) *Server {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(Config{Store: store, Resources: catalog.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := s.handler("", "v1", "namespaces").create(context.Background(), ns, writeOptions{manager: "test"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func testClaim(name, class, size string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if class != "-" {
		pvc.Spec.StorageClassName = &class
	}
	return pvc
}

// TestAdmitClaimDefaultClass: a claim naming no class gets the newest
// default class (the first by name among equally new ones); a claim naming
// one, even "", keeps it; without a default, none is set.
func TestAdmitClaimDefaultClass(t *testing.T) {
	s := newStorageTestServer(t)
	ctx := context.Background()
	classes := s.handler(storagev1.GroupName, "v1", "storageclasses")
	pvcs := s.handler("", "v1", "persistentvolumeclaims")
	// Classes are created in the store with chosen creation times.
	addClass := func(name string, def string, created time.Time) {
		t.Helper()
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}, Provisioner: "x.io/p"}
		if def != "" {
			sc.Annotations = map[string]string{volume.AnnDefaultClass: def}
		}
		classes.res.Strategy.Default(sc)
		if _, err := classes.objs.create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name  string
		setup func()
		claim *corev1.PersistentVolumeClaim
		want  *string
	}{
		{name: "no default class", claim: testClaim("a", "-", "1Gi"), want: nil},
		{name: "not-default classes are not chosen", setup: func() { addClass("plain", "", t0); addClass("false", "false", t0.Add(time.Hour)) },
			claim: testClaim("b", "-", "1Gi"), want: nil},
		{name: "the one default", setup: func() { addClass("old", "true", t0) }, claim: testClaim("c", "-", "1Gi"), want: new("old")},
		{name: "the newest default", setup: func() { addClass("new", "true", t0.Add(time.Minute)) }, claim: testClaim("d", "-", "1Gi"), want: new("new")},
		{name: "equally new: first by name", setup: func() { addClass("aaa", "true", t0.Add(time.Minute)) }, claim: testClaim("e", "-", "1Gi"), want: new("aaa")},
		{name: "explicit class kept", claim: testClaim("f", "plain", "1Gi"), want: new("plain")},
		{name: "empty class kept", claim: testClaim("g", "", "1Gi"), want: new("")},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.setup != nil {
				step.setup()
			}
			out, err := pvcs.create(ctx, step.claim, writeOptions{manager: "test"})
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*corev1.PersistentVolumeClaim)
			if (got.Spec.StorageClassName == nil) != (step.want == nil) ||
				(step.want != nil && *got.Spec.StorageClassName != *step.want) {
				t.Errorf("storageClassName %v, want %v", deref(got.Spec.StorageClassName), deref(step.want))
			}
			if !slices.Equal(got.Finalizers, []string{volume.PVCProtectionFinalizer}) {
				t.Errorf("finalizers %v, want [%s]", got.Finalizers, volume.PVCProtectionFinalizer)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return `"` + *s + `"`
}

// TestAdmitVolumeFinalizer: a new volume gets pv-protection, once.
func TestAdmitVolumeFinalizer(t *testing.T) {
	s := newStorageTestServer(t)
	pvs := s.handler("", "v1", "persistentvolumes")
	for _, tc := range []struct {
		name       string
		finalizers []string
		want       []string
	}{
		{name: "none", want: []string{volume.PVProtectionFinalizer}},
		{name: "already there", finalizers: []string{volume.PVProtectionFinalizer}, want: []string{volume.PVProtectionFinalizer}},
		{name: "another", finalizers: []string{"x.io/f"}, want: []string{"x.io/f", volume.PVProtectionFinalizer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv := &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(tc.name, " ", "-"), Finalizers: tc.finalizers},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/x"}},
				},
			}
			out, err := pvs.create(context.Background(), pv, writeOptions{manager: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.(*corev1.PersistentVolume).Finalizers; !slices.Equal(got, tc.want) {
				t.Errorf("finalizers %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAdmitClaimResize: growing a request needs a bound claim of a class
// allowing expansion; shrinking below the capacity is invalid.
func TestAdmitClaimResize(t *testing.T) {
	s := newStorageTestServer(t)
	ctx := context.Background()
	classes := s.handler(storagev1.GroupName, "v1", "storageclasses")
	pvcs := s.handler("", "v1", "persistentvolumeclaims")
	for name, allow := range map[string]*bool{"grow": new(true), "fixed": new(false), "unset": nil} {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "x.io/p", AllowVolumeExpansion: allow}
		if _, err := classes.create(ctx, sc, writeOptions{manager: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// setPhase writes the claim's status as the binder would.
	setPhase := func(name string, phase corev1.PersistentVolumeClaimPhase) {
		t.Helper()
		_, err := pvcs.writeUpdate(ctx, "default", name, false, func(cur runtime.Object) (runtime.Object, error) {
			c := cur.DeepCopyObject().(*corev1.PersistentVolumeClaim)
			c.Status.Phase = phase
			if phase == corev1.ClaimBound {
				c.Status.Capacity = c.Spec.Resources.Requests
			}
			return c, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	const (
		notBound = `persistentvolumeclaims "%s" is forbidden: Only bound persistent volume claims can be expanded`
		noResize = `persistentvolumeclaims "%s" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize`
	)
	for _, tc := range []struct {
		name    string
		class   string
		phase   corev1.PersistentVolumeClaimPhase
		newSize string
		err     string
		invalid string
	}{
		{name: "grow-bound", class: "grow", phase: corev1.ClaimBound, newSize: "2Gi"},
		{name: "grow-pending", class: "grow", phase: corev1.ClaimPending, newSize: "2Gi", err: notBound},
		{name: "fixed-bound", class: "fixed", phase: corev1.ClaimBound, newSize: "2Gi", err: noResize},
		{name: "unset-bound", class: "unset", phase: corev1.ClaimBound, newSize: "2Gi", err: noResize},
		{name: "noclass-bound", class: "", phase: corev1.ClaimBound, newSize: "2Gi", err: noResize},
		{name: "missing-class-bound", class: "gone", phase: corev1.ClaimBound, newSize: "2Gi", err: noResize},
		{name: "same-size", class: "fixed", phase: corev1.ClaimPending, newSize: "1Gi"},
		{name: "shrink-bound", class: "grow", phase: corev1.ClaimBound, newSize: "512Mi", invalid: "field can not be less than status.capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := pvcs.create(ctx, testClaim(tc.name, tc.class, "1Gi"), writeOptions{manager: "test"}); err != nil {
				t.Fatal(err)
			}
			setPhase(tc.name, tc.phase)
			out, err := pvcs.update(ctx, "default", tc.name, func(cur runtime.Object) (runtime.Object, error) {
				c := cur.DeepCopyObject().(*corev1.PersistentVolumeClaim)
				c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(tc.newSize)
				return c, nil
			}, writeOptions{manager: "test"})
			switch {
			case tc.err != "":
				want := strings.ReplaceAll(tc.err, "%s", tc.name)
				if !apierrors.IsForbidden(err) || err.Error() != want {
					t.Fatalf("error %v, want 403 %q", err, want)
				}
			case tc.invalid != "":
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.invalid) {
					t.Fatalf("error %v, want 422 %q", err, tc.invalid)
				}
			case err != nil:
				t.Fatal(err)
			default:
				got := out.(*corev1.PersistentVolumeClaim).Spec.Resources.Requests[corev1.ResourceStorage]
				if got.Cmp(resource.MustParse(tc.newSize)) != 0 {
					t.Errorf("request %s, want %s", got.String(), tc.newSize)
				}
			}
		})
	}
}

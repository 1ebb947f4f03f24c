package server

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/havre/havre/internal/volume"
)

func TestCreateDefaultStorageClass(t *testing.T) {
	ctx := context.Background()
	t.Run("missing: created", func(t *testing.T) {
		cs := fake.NewClientset()
		if err := createDefaultStorageClass(ctx, cs); err != nil {
			t.Fatal(err)
		}
		sc, err := cs.StorageV1().StorageClasses().Get(ctx, volume.DefaultClass, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Provisioner != volume.Provisioner || sc.Annotations[volume.AnnDefaultClass] != "true" ||
			*sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
			*sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer || !*sc.AllowVolumeExpansion {
			t.Errorf("class %+v", sc)
		}
	})
	t.Run("edited by the user: kept", func(t *testing.T) {
		edited := defaultStorageClass()
		edited.Annotations = nil
		edited.AllowVolumeExpansion = new(false)
		cs := fake.NewClientset(edited)
		if err := createDefaultStorageClass(ctx, cs); err != nil {
			t.Fatal(err)
		}
		sc, err := cs.StorageV1().StorageClasses().Get(ctx, volume.DefaultClass, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.Annotations) != 0 || *sc.AllowVolumeExpansion {
			t.Errorf("the user's class was changed: %+v", sc)
		}
	})
}

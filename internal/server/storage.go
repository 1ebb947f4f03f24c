package server

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/volume"
)

// defaultStorageClass is the StorageClass of Havre's local volumes, made
// the default: volumes are provisioned on the node the scheduler chooses,
// deleted with their claims, and may grow.
func defaultStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        volume.DefaultClass,
			Annotations: map[string]string{volume.AnnDefaultClass: "true"},
		},
		Provisioner:          volume.Provisioner,
		ReclaimPolicy:        new(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    new(storagev1.VolumeBindingWaitForFirstConsumer),
		AllowVolumeExpansion: new(true),
	}
}

// ensureDefaultStorageClass is an API server post-start hook: it creates
// the default StorageClass when no class of its name exists. A class of
// that name, the user's edits included (or its removal of the default
// annotation), is left as it is.
func ensureDefaultStorageClass(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return createDefaultStorageClass(ctx, cs)
}

func createDefaultStorageClass(ctx context.Context, cs kubernetes.Interface) error {
	classes := cs.StorageV1().StorageClasses()
	if _, err := classes.Get(ctx, volume.DefaultClass, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading StorageClass %s: %w", volume.DefaultClass, err)
	}
	_, err := classes.Create(ctx, defaultStorageClass(), metav1.CreateOptions{FieldManager: "havre-server"})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating StorageClass %s: %w", volume.DefaultClass, err)
	}
	slog.Info("created the default StorageClass", "name", volume.DefaultClass, "provisioner", volume.Provisioner)
	return nil
}

package provisioner

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/havre/havre/internal/volume"
)

// Labels of the CSIStorageCapacity objects, as external-provisioner
// labels its own (a label value has no slash: the driver is named
// havre.io-local there).
const (
	labelDriverName = "csi.storage.k8s.io/drivername"
	labelManagedBy  = "csi.storage.k8s.io/managed-by"
	driverLabel     = "havre.io-local"
	managedBy       = "havre-agent"
)

// publishCapacityLoop publishes the node's capacity now, after every
// change, and every CapacityPeriod.
func (p *Provisioner) publishCapacityLoop(ctx context.Context) {
	ticker := p.o.Clock.NewTicker(p.o.CapacityPeriod)
	defer ticker.Stop()
	for {
		if err := p.PublishCapacity(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("publishing the node's storage capacity", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-p.capKick:
		}
	}
}

// PublishCapacity writes one CSIStorageCapacity per StorageClass of
// havre.io/local for this node (and removes those of classes gone).
func (p *Provisioner) PublishCapacity(ctx context.Context) error {
	free, err := p.o.Backing.Free(ctx)
	if err != nil {
		return err
	}
	classes, err := p.classes.List(labels.Everything())
	if err != nil {
		return err
	}
	api := p.client.StorageV1().CSIStorageCapacities(volume.CapacityNamespace)
	var owner []metav1.OwnerReference
	if node, err := p.client.CoreV1().Nodes().Get(ctx, p.o.NodeName, metav1.GetOptions{}); err == nil {
		// The objects go with the Node.
		owner = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
	}
	want := map[string]bool{}
	for _, class := range classes {
		if class.Provisioner != volume.Provisioner {
			continue
		}
		name := volume.CapacityName(p.o.NodeName, class.Name)
		want[name] = true
		c := &storagev1.CSIStorageCapacity{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: volume.CapacityNamespace,
				Labels:          map[string]string{labelDriverName: driverLabel, labelManagedBy: managedBy},
				OwnerReferences: owner,
			},
			NodeTopology:      &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelHostname: p.o.NodeName}},
			StorageClassName:  class.Name,
			Capacity:          resource.NewQuantity(free, resource.BinarySI),
			MaximumVolumeSize: resource.NewQuantity(free, resource.BinarySI),
		}
		old, err := api.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if _, err := api.Create(ctx, c, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		case err != nil:
			return err
		case old.Capacity == nil || old.Capacity.Value() != free || old.MaximumVolumeSize == nil || old.MaximumVolumeSize.Value() != free || old.StorageClassName != class.Name:
			c.ResourceVersion = old.ResourceVersion
			if _, err := api.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
	}
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: labelDriverName + "=" + driverLabel})
	if err != nil {
		return err
	}
	for _, c := range list.Items {
		if want[c.Name] || c.NodeTopology == nil || c.NodeTopology.MatchLabels[corev1.LabelHostname] != p.o.NodeName {
			continue
		}
		if err := api.Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

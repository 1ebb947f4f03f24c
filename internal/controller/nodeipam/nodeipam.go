// Package nodeipam is the node IPAM controller: it gives every Node without
// one a pod CIDR (spec.podCIDR and spec.podCIDRs) carved from the cluster
// CIDR, and frees the CIDRs of deleted nodes, as kube-controller-manager's
// range allocator does.
//
// It is a client of the API only, and never changes a CIDR a node already
// has (the API forbids it; the agent's network depends on it).
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// Defaults of `havre server`.
const (
	DefaultClusterCIDR = "10.42.0.0/16"
	DefaultNodeMaskV4  = 24
)

// Controller assigns pod CIDRs to nodes.
type Controller struct {
	client kubernetes.Interface
	alloc  *Allocator
	lister cache.Indexer
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New returns a controller allocating /maskSize subnets of clusterCIDR.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, clusterCIDR string, maskSize int) (*Controller, error) {
	alloc, err := NewAllocator(clusterCIDR, maskSize)
	if err != nil {
		return nil, err
	}
	inf := factory.Core().V1().Nodes().Informer()
	c := &Controller{
		client: client, alloc: alloc, lister: inf.GetIndexer(), synced: inf.HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam"}),
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(obj) },
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				for _, cidr := range n.Spec.PodCIDRs {
					c.alloc.Release(cidr)
				}
			}
		},
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if n, ok := obj.(*corev1.Node); ok && len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR == "" {
		c.queue.Add(n.Name)
	}
}

// Run allocates until ctx is done. Nodes' existing CIDRs are marked used
// before anything is allocated.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, []cache.InformerSynced{c.synced}, workers, c.sync,
		"assigning a pod CIDR failed; retrying", "node", controller.AfterSync(c.occupyExisting))
}

// occupyExisting marks the pod CIDRs the nodes already have as used.
func (c *Controller) occupyExisting(context.Context) {
	for _, obj := range c.lister.List() {
		n := obj.(*corev1.Node)
		for _, cidr := range n.Spec.PodCIDRs {
			if err := c.alloc.Occupy(cidr); err != nil {
				slog.Warn("node has a pod CIDR outside the cluster CIDR", "node", n.Name, "podCIDR", cidr, "err", err)
			}
		}
	}
}

func (c *Controller) sync(ctx context.Context, name string) error {
	obj, exists, err := c.lister.GetByKey(name)
	if err != nil || !exists {
		return err
	}
	node := obj.(*corev1.Node)
	if len(node.Spec.PodCIDRs) > 0 || node.Spec.PodCIDR != "" {
		return nil
	}
	cidr, err := c.alloc.Allocate()
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{"podCIDR": cidr, "podCIDRs": []string{cidr}},
	})
	if err != nil {
		c.alloc.Release(cidr)
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	switch {
	case err == nil:
		slog.Info("assigned a pod CIDR", "node", name, "podCIDR", cidr)
		return nil
	case apierrors.IsNotFound(err):
		c.alloc.Release(cidr)
		return nil
	default:
		c.alloc.Release(cidr)
		if apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
			// Someone else set a CIDR (or the node changed): the next
			// event tells.
			return nil
		}
		return fmt.Errorf("patching node %s: %w", name, err)
	}
}

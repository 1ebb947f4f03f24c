// Package serviceaccount is the service account controller: it makes sure
// every active namespace has a ServiceAccount named "default", and creates
// it again when it is deleted, as kube-controller-manager's
// serviceaccount-controller does.
//
// It is a client of the API only.
package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/controller"
)

// DefaultName is the ServiceAccount every namespace has, and the one pods
// without spec.serviceAccountName run as.
const DefaultName = "default"

// Controller ensures the default ServiceAccount of every namespace.
type Controller struct {
	client   kubernetes.Interface
	accounts []string
	nsLister corelisters.NamespaceLister
	saLister corelisters.ServiceAccountLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New returns a controller ensuring the ServiceAccount "default" in every
// active namespace, with the namespace and service account informers of
// factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) (*Controller, error) {
	nsInf := factory.Core().V1().Namespaces()
	saInf := factory.Core().V1().ServiceAccounts()
	c := &Controller{
		client:   client,
		accounts: []string{DefaultName},
		nsLister: nsInf.Lister(),
		saLister: saInf.Lister(),
		synced:   []cache.InformerSynced{nsInf.Informer().HasSynced, saInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount"}),
	}
	enqueueNamespace := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok {
			c.queue.Add(ns.Name)
		}
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueNamespace,
		UpdateFunc: func(_, obj any) { enqueueNamespace(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := saInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if sa, ok := obj.(*corev1.ServiceAccount); ok && slices.Contains(c.accounts, sa.Name) {
				c.queue.Add(sa.Namespace)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs namespaces with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "ensuring service accounts failed; retrying", "namespace")
}

// sync creates the missing service accounts of one namespace. Namespaces
// that are gone or not Active are left alone.
func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.nsLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		return nil
	}
	var errs []error
	for _, account := range c.accounts {
		_, err := c.saLister.ServiceAccounts(name).Get(account)
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: account, Namespace: name}}
		_, err = c.client.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{})
		switch {
		case err == nil:
			slog.Debug("created service account", "namespace", name, "name", account)
		case apierrors.IsAlreadyExists(err),
			apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause),
			apierrors.IsNotFound(err):
			// Someone else created it, or the namespace is going away.
		default:
			errs = append(errs, fmt.Errorf("creating service account %s/%s: %w", name, account, err))
		}
	}
	return errors.Join(errs...)
}

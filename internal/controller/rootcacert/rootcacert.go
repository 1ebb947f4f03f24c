// Package rootcacert is the root CA certificate publisher: it keeps a
// ConfigMap named kube-root-ca.crt, whose key ca.crt holds the cluster CA in
// PEM, in every namespace, as kube-controller-manager's
// root-ca-certificate-publisher-controller does. Pods read it through the
// projected service account volume to verify the API server.
//
// It is a client of the API only.
package rootcacert

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// Names and the description annotation of the published ConfigMap, as
// upstream's.
const (
	ConfigMapName         = "kube-root-ca.crt"
	DataKey               = "ca.crt"
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Publisher keeps the root CA ConfigMap of every namespace.
type Publisher struct {
	client   kubernetes.Interface
	rootCA   string
	cmLister corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New returns a publisher of rootCA (PEM) on the namespace and ConfigMap
// informers of factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, rootCA []byte) (*Publisher, error) {
	if len(rootCA) == 0 {
		return nil, errors.New("root CA publisher: no CA certificate")
	}
	cmInf := factory.Core().V1().ConfigMaps()
	nsInf := factory.Core().V1().Namespaces()
	p := &Publisher{
		client:   client,
		rootCA:   string(rootCA),
		cmLister: cmInf.Lister(),
		synced:   []cache.InformerSynced{cmInf.Informer().HasSynced, nsInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "root_ca_cert_publisher"}),
	}
	configMapChanged := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == ConfigMapName {
			p.queue.Add(cm.Namespace)
		}
	}
	if _, err := cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { configMapChanged(obj) },
		DeleteFunc: configMapChanged,
	}); err != nil {
		return nil, err
	}
	if _, err := nsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				p.queue.Add(ns.Name)
			}
		},
		UpdateFunc: func(_, obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase == corev1.NamespaceActive {
				p.queue.Add(ns.Name)
			}
		},
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// Run publishes with workers goroutines until ctx is done.
func (p *Publisher) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, p.queue, p.synced, workers, p.sync, "publishing the root CA failed; retrying", "namespace")
}

// sync creates the namespace's ConfigMap, or puts back its data and
// description when they differ.
func (p *Publisher) sync(ctx context.Context, ns string) error {
	data := map[string]string{DataKey: p.rootCA}
	cm, err := p.cmLister.ConfigMaps(ns).Get(ConfigMapName)
	switch {
	case apierrors.IsNotFound(err):
		_, err = p.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name:        ConfigMapName,
				Namespace:   ns,
				Annotations: map[string]string{DescriptionAnnotation: Description},
			},
			Data: data,
		}, metav1.CreateOptions{})
		// A namespace that is gone or terminating needs no CA. A ConfigMap
		// created meanwhile (AlreadyExists) is checked on the retry, once
		// the informer has it.
		if err == nil || apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		return fmt.Errorf("creating configmap %s/%s: %w", ns, ConfigMapName, err)
	case err != nil:
		return err
	}
	if maps.Equal(cm.Data, data) && cm.Annotations[DescriptionAnnotation] != "" {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data = data
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	if _, err := p.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("updating configmap %s/%s: %w", ns, ConfigMapName, err)
	}
	return nil
}

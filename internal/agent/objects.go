package agent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// objectKey names a ConfigMap or Secret.
type objectKey struct {
	secret          bool
	namespace, name string
}

// objectCache serves the ConfigMaps and Secrets the node's pods refer to
// from a watch of each (as the kubelet's watch-based object managers do,
// so the agent never lists every Secret of the cluster), and wakes the
// pods using one when it changes, so that their volumes are updated and
// containers waiting for it start. Objects not watched yet are read from
// the API. track and untrack do nothing on a nil objectCache.
type objectCache struct {
	client   kubernetes.Interface
	ctx      context.Context
	notify   func(types.UID)
	fallback objectSource

	mu      sync.Mutex
	watches map[objectKey]*objectWatch
	refs    map[types.UID]map[objectKey]bool
}

type objectWatch struct {
	store  cache.Store
	synced func() bool
	cancel context.CancelFunc
}

// newObjectCache returns a cache whose watches live until ctx is done.
func newObjectCache(ctx context.Context, client kubernetes.Interface, notify func(types.UID)) *objectCache {
	return &objectCache{
		client: client, ctx: ctx, notify: notify, fallback: apiObjects{client: client},
		watches: map[objectKey]*objectWatch{}, refs: map[types.UID]map[objectKey]bool{},
	}
}

// podObjectRefs lists the ConfigMaps and Secrets a pod refers to: in
// volumes (projected ones too), env and envFrom.
func podObjectRefs(pod *corev1.Pod) map[objectKey]bool {
	refs := map[objectKey]bool{}
	cm := func(name string) {
		if name != "" {
			refs[objectKey{namespace: pod.Namespace, name: name}] = true
		}
	}
	secret := func(name string) {
		if name != "" {
			refs[objectKey{secret: true, namespace: pod.Namespace, name: name}] = true
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm(v.ConfigMap.Name)
		case v.Secret != nil:
			secret(v.Secret.SecretName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cm(s.ConfigMap.Name)
				}
				if s.Secret != nil {
					secret(s.Secret.Name)
				}
			}
		}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					cm(from.ConfigMapRef.Name)
				}
				if from.SecretRef != nil {
					secret(from.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					cm(r.Name)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					secret(r.Name)
				}
			}
		}
	}
	return refs
}

// track records the objects a pod refers to, watching those no other pod
// did and dropping the watches of those no pod refers to any more.
func (o *objectCache) track(pod *corev1.Pod) {
	if o == nil {
		return
	}
	keys := podObjectRefs(pod)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx.Err() != nil {
		return
	}
	old := o.refs[pod.UID]
	if len(keys) == 0 {
		delete(o.refs, pod.UID)
	} else {
		o.refs[pod.UID] = keys
	}
	for k := range keys {
		if o.watches[k] == nil {
			o.watches[k] = o.startWatch(k)
		}
	}
	for k := range old {
		if !keys[k] {
			o.dropIfUnusedLocked(k)
		}
	}
}

// untrack forgets a pod's references.
func (o *objectCache) untrack(uid types.UID) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.refs[uid]
	delete(o.refs, uid)
	for k := range old {
		o.dropIfUnusedLocked(k)
	}
}

func (o *objectCache) dropIfUnusedLocked(k objectKey) {
	for _, keys := range o.refs {
		if keys[k] {
			return
		}
	}
	if w := o.watches[k]; w != nil {
		w.cancel()
		delete(o.watches, k)
	}
}

// startWatch starts an informer on one object (a field selector on its
// name).
func (o *objectCache) startWatch(k objectKey) *objectWatch {
	selector := "metadata.name=" + k.name
	lw := &cache.ListWatch{}
	var example runtime.Object
	if k.secret {
		example = &corev1.Secret{}
		lw.ListWithContextFunc = func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return o.client.CoreV1().Secrets(k.namespace).List(ctx, opts)
		}
		lw.WatchFuncWithContext = func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return o.client.CoreV1().Secrets(k.namespace).Watch(ctx, opts)
		}
	} else {
		example = &corev1.ConfigMap{}
		lw.ListWithContextFunc = func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return o.client.CoreV1().ConfigMaps(k.namespace).List(ctx, opts)
		}
		lw.WatchFuncWithContext = func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return o.client.CoreV1().ConfigMaps(k.namespace).Watch(ctx, opts)
		}
	}
	changed := func(any) { o.changed(k) }
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, o.client),
		ObjectType:    example,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, obj any) { changed(obj) },
			DeleteFunc: changed,
		},
	})
	ctx, cancel := context.WithCancel(o.ctx)
	go ctrl.RunWithContext(ctx)
	return &objectWatch{store: store, synced: ctrl.HasSynced, cancel: cancel}
}

// changed wakes the pods that refer to an object.
func (o *objectCache) changed(k objectKey) {
	var uids []types.UID
	o.mu.Lock()
	for uid, keys := range o.refs {
		if keys[k] {
			uids = append(uids, uid)
		}
	}
	o.mu.Unlock()
	for _, uid := range uids {
		o.notify(uid)
	}
}

// lookup returns a watched object from its watch's store; ok is false
// when the object is not watched or its watch has not synced yet.
func (o *objectCache) lookup(k objectKey) (obj any, found, ok bool) {
	o.mu.Lock()
	w := o.watches[k]
	o.mu.Unlock()
	if w == nil || !w.synced() {
		return nil, false, false
	}
	obj, found, err := w.store.GetByKey(k.namespace + "/" + k.name)
	if err != nil {
		return nil, false, false
	}
	return obj, found, true
}

// ConfigMap returns a ConfigMap, from its watch if it has one.
func (o *objectCache) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if obj, found, ok := o.lookup(objectKey{namespace: namespace, name: name}); ok {
		if !found {
			return nil, apierrors.NewNotFound(corev1.Resource("configmaps"), name)
		}
		return obj.(*corev1.ConfigMap), nil
	}
	return o.fallback.ConfigMap(ctx, namespace, name)
}

// Secret returns a Secret, from its watch if it has one.
func (o *objectCache) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	if obj, found, ok := o.lookup(objectKey{secret: true, namespace: namespace, name: name}); ok {
		if !found {
			return nil, apierrors.NewNotFound(corev1.Resource("secrets"), name)
		}
		return obj.(*corev1.Secret), nil
	}
	return o.fallback.Secret(ctx, namespace, name)
}

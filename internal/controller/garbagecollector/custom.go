package garbagecollector

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Resource is a resource served beyond those the collector was built with
// (a custom resource).
type Resource struct {
	schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// extensibleMapper is the collector's RESTMapper plus the custom resources
// served now.
type extensibleMapper struct {
	meta.RESTMapper
	mu    sync.RWMutex
	extra map[schema.GroupKind]*meta.RESTMapping
}

func (m *extensibleMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	m.mu.RLock()
	mapping, ok := m.extra[gk]
	m.mu.RUnlock()
	if ok {
		return mapping, nil
	}
	return m.RESTMapper.RESTMapping(gk, versions...)
}

// customInformer is the informer of one custom resource.
type customInformer struct {
	informer cache.Controller
	cancel   context.CancelFunc
}

// SetCustomResources makes the collector watch exactly these custom
// resources (beyond the ones it was built with), from now until ctx is
// done: informers of new ones start, those of removed ones stop.
func (c *Controller) SetCustomResources(ctx context.Context, resources []Resource) {
	c.customMu.Lock()
	defer c.customMu.Unlock()
	want := map[schema.GroupVersionResource]Resource{}
	for _, r := range resources {
		want[r.GroupVersionResource] = r
	}
	for gvr, ci := range c.custom {
		if _, ok := want[gvr]; !ok {
			ci.cancel()
			delete(c.custom, gvr)
		}
	}
	extra := map[schema.GroupKind]*meta.RESTMapping{}
	for gvr, r := range want {
		gvk := gvr.GroupVersion().WithKind(r.Kind)
		scope := meta.RESTScopeRoot
		if r.Namespaced {
			scope = meta.RESTScopeNamespace
		}
		extra[gvk.GroupKind()] = &meta.RESTMapping{Resource: gvr, GroupVersionKind: gvk, Scope: scope}
	}
	c.mapper.mu.Lock()
	c.mapper.extra = extra
	c.mapper.mu.Unlock()
	for gvr, r := range want {
		if _, ok := c.custom[gvr]; ok {
			continue
		}
		infCtx, cancel := context.WithCancel(ctx)
		inf := newMetadataInformer(c.client, gvr, c.handler(gvr.GroupVersion().WithKind(r.Kind)))
		c.custom[gvr] = &customInformer{informer: inf, cancel: cancel}
		go inf.RunWithContext(infCtx)
	}
}

// customSynced reports whether every custom resource's informer has listed.
func (c *Controller) customSynced() bool {
	c.customMu.Lock()
	defer c.customMu.Unlock()
	for _, ci := range c.custom {
		if !ci.informer.HasSynced() {
			return false
		}
	}
	return true
}

package apiserver

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/storage"
)

// eventCache shares the work of decoding and encoding one stored version
// among all the watchers that receive it, as kube-apiserver's
// cachingObject does: with a thousand watchers, an event is decoded once
// and encoded once per media type instead of a thousand times.
//
// Entries are keyed by (key, modRevision), which names one version of one
// object; cached objects are shared and must not be modified.
type eventCache struct {
	mu      sync.Mutex
	entries map[versionKey]*cachedVersion
}

// maxCachedVersions bounds the cache; it is cleared when full, which costs
// at most one extra decode per watcher for the events in flight.
const maxCachedVersions = 2048

type versionKey struct {
	key string
	rev int64
}

type cachedVersion struct {
	once sync.Once
	obj  runtime.Object
	err  error

	mu  sync.Mutex
	raw map[string][]byte // media type → encoded object
}

func (c *eventCache) version(kv storage.KeyValue) *cachedVersion {
	k := versionKey{kv.Key, kv.ModRevision}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedVersions {
		c.entries = make(map[versionKey]*cachedVersion, 64)
	}
	v := c.entries[k]
	if v == nil {
		v = &cachedVersion{}
		c.entries[k] = v
	}
	return v
}

// decode returns the shared decoded object of kv.
func (c *eventCache) decode(o *objects, kv storage.KeyValue) (runtime.Object, *cachedVersion, error) {
	v := c.version(kv)
	v.once.Do(func() { v.obj, v.err = o.decode(kv) })
	if v.err != nil {
		// A failure (a custom resource's conversion webhook) is not
		// kept: the next watcher of this version tries again.
		c.mu.Lock()
		if k := (versionKey{kv.Key, kv.ModRevision}); c.entries[k] == v {
			delete(c.entries, k)
		}
		c.mu.Unlock()
	}
	return v.obj, v, v.err
}

// encoded returns the object encoded for mediaType, encoding it once.
func (v *cachedVersion) encoded(mediaType string, encode func(runtime.Object) ([]byte, error)) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if raw, ok := v.raw[mediaType]; ok {
		return raw, nil
	}
	raw, err := encode(v.obj)
	if err != nil {
		return nil, err
	}
	if v.raw == nil {
		v.raw = map[string][]byte{}
	}
	v.raw[mediaType] = raw
	return raw, nil
}

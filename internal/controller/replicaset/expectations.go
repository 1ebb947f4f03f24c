package replicaset

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long expectations are waited for before a sync
// goes ahead anyway (a lost watch event must not stall a ReplicaSet
// forever), as upstream's.
const ExpectationsTimeout = 5 * time.Minute

// expectations remembers, per ReplicaSet key, how many pod creations and
// which pod deletions the controller issued but has not yet seen through its
// informer. While some are outstanding the ReplicaSet is not managed again,
// so a burst of creates is not duplicated by a sync that runs on a stale
// cache. Deletions are tracked by pod key so that a pod seen first with a
// deletionTimestamp and then deleted counts once.
type expectations struct {
	mu    sync.Mutex
	items map[string]*expectation
	now   func() time.Time
}

type expectation struct {
	adds    int
	deletes map[string]bool
	at      time.Time
}

func newExpectations() *expectations {
	return &expectations{items: map[string]*expectation{}, now: time.Now}
}

// satisfied reports whether key has nothing outstanding (or its
// expectations expired, or it never had any).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.items[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletes) == 0 {
		return true
	}
	return e.now().Sub(x.at) > ExpectationsTimeout
}

// expectCreations records that n pods are being created for key.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.items[key] = &expectation{adds: n, deletes: map[string]bool{}, at: e.now()}
}

// expectDeletions records that the pods podKeys are being deleted for key.
func (e *expectations) expectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletes: map[string]bool{}, at: e.now()}
	for _, k := range podKeys {
		x.deletes[k] = true
	}
	e.items[key] = x
}

// creationObserved lowers key's outstanding creations by one.
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deletionObserved marks the deletion of podKey for key as seen.
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok {
		delete(x.deletes, podKey)
	}
}

// forget drops key's expectations (the ReplicaSet is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.items, key)
}

package daemonset

import (
	"sync"
	"time"
)

// expectationsTTL is how long unobserved creations and deletions hold a
// set back, should their events be lost.
const expectationsTTL = 5 * time.Minute

// expectations count, per daemon set, the pod creations and deletions it
// made and has not yet seen in the pod informer. Until they are seen its
// cache is behind, and a sync would create or delete again.
type expectations struct {
	mu  sync.Mutex
	m   map[string]*expected
	now func() time.Time
}

type expected struct {
	add, del int
	at       time.Time
}

func newExpectations() *expectations {
	return &expectations{m: map[string]*expected{}, now: time.Now}
}

// set records that key is about to create add and delete del pods.
func (e *expectations) set(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expected{add: add, del: del, at: e.now()}
}

// lower subtracts creations and deletions that will not be observed (they
// failed, or were skipped) or that were observed.
func (e *expectations) lower(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

func (e *expectations) creationObserved(key string) { e.lower(key, 1, 0) }
func (e *expectations) deletionObserved(key string) { e.lower(key, 0, 1) }

// satisfied reports whether everything expected of key was observed (or
// expired).
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	return !ok || (x.add <= 0 && x.del <= 0) || e.now().Sub(x.at) > expectationsTTL
}

// forget drops key's expectations (the set is gone).
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

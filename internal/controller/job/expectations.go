package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// expectationsTimeout is how long unobserved creations or deletions hold a
// job's sync back, as upstream's ExpectationsTimeout.
const expectationsTimeout = 5 * time.Minute

// podExpectations counts, per job, the pod creations and deletions the
// controller issued but has not seen in its informer yet: until it has, the
// cache may show too few or too many pods, and the job is not managed.
type podExpectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	m     map[string]*expected
}

type expected struct {
	add, del int
	at       time.Time
}

func newPodExpectations(clk clock.PassiveClock) *podExpectations {
	return &podExpectations{clock: clk, m: map[string]*expected{}}
}

// satisfied reports whether everything expected of key was observed (or
// the expectations expired).
func (e *podExpectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	return !ok || (x.add <= 0 && x.del <= 0) || e.clock.Since(x.at) > expectationsTimeout
}

func (e *podExpectations) expect(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expected{add: add, del: del, at: e.clock.Now()}
}

func (e *podExpectations) observe(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add -= add
		x.del -= del
	}
}

func (e *podExpectations) creationObserved(key string) { e.observe(key, 1, 0) }
func (e *podExpectations) deletionObserved(key string) { e.observe(key, 0, 1) }

func (e *podExpectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// uidExpectations are, per job, the pods whose tracking finalizer the
// controller removed but has not yet seen removed.
type uidExpectations struct {
	mu sync.Mutex
	m  map[string]sets.Set[string]
}

func newUIDExpectations() *uidExpectations { return &uidExpectations{m: map[string]sets.Set[string]{}} }

// uids returns a copy of the expected UIDs of key.
func (e *uidExpectations) uids(key string) sets.Set[string] {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[key].Clone()
}

func (e *uidExpectations) expect(key string, uids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m[key] == nil {
		e.m[key] = sets.New[string]()
	}
	e.m[key].Insert(uids...)
}

func (e *uidExpectations) observed(key, uid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.m[key]; s != nil {
		s.Delete(uid)
		if s.Len() == 0 {
			delete(e.m, key)
		}
	}
}

func (e *uidExpectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

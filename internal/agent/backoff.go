package agent

import (
	"sync"
	"time"
)

// Back-off of container restarts and image pulls, as the kubelet's: 10 s
// doubling to 5 min, forgotten after 10 min without a failure.
const (
	initialBackoff = 10 * time.Second
	maxBackoff     = 5 * time.Minute
)

// backoff tracks per-key exponential delays (client-go's flowcontrol.Backoff
// semantics, with an injectable clock for tests).
type backoff struct {
	initial, max time.Duration
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

func newBackoff(initial, max time.Duration, now func() time.Time) *backoff {
	if now == nil {
		now = time.Now
	}
	return &backoff{initial: initial, max: max, now: now, entries: map[string]*backoffEntry{}}
}

// expired reports whether an entry last updated at last is forgotten by
// eventTime.
func (b *backoff) expired(e *backoffEntry, eventTime time.Time) bool {
	return eventTime.Sub(e.lastUpdate) > 2*b.max
}

// Next records a failure of key at eventTime: the delay starts at initial,
// or doubles (up to max).
func (b *backoff) Next(key string, eventTime time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		b.entries[key] = &backoffEntry{delay: b.initial, lastUpdate: eventTime}
		return
	}
	e.delay = min(2*e.delay, b.max)
	e.lastUpdate = eventTime
}

// InBackoffSince reports whether key is still backing off from a failure at
// eventTime, and for how much longer.
func (b *backoff) InBackoffSince(key string, eventTime time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return false, 0
	}
	now := b.now()
	if b.expired(e, now) {
		return false, 0
	}
	if left := e.delay - now.Sub(eventTime); left > 0 {
		return true, left
	}
	return false, 0
}

// Delay returns key's current delay (0 if none).
func (b *backoff) Delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

// LastUpdate returns when key last failed.
func (b *backoff) LastUpdate(key string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.lastUpdate, true
	}
	return time.Time{}, false
}

// Forget drops every key with the given prefix.
func (b *backoff) ForgetPrefix(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}

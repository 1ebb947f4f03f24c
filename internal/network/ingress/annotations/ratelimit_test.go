package annotations

import (
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) step(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRateLimits(t *testing.T) {
	type step struct {
		after  time.Duration // clock advance before the request
		remote string        // default 10.0.0.1:1
		status int
	}
	burst := func(n int, status int) []step {
		s := make([]step, n)
		for i := range s {
			s[i] = step{status: status}
		}
		return s
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name     string
		ann      map[string]string
		steps    []step
		warnings []string
	}{
		{name: "limit-rps: rate times the burst multiplier (5), plus one, at once",
			ann: map[string]string{"limit-rps": "2"}, steps: cat(burst(11, 200), burst(1, 503))},
		{name: "limit-rps drains at the rate",
			ann:   map[string]string{"limit-rps": "2", "limit-burst-multiplier": "1"},
			steps: cat(burst(3, 200), burst(1, 503), []step{{after: 500 * time.Millisecond, status: 200}, {status: 503}, {after: time.Second, status: 200}, {status: 200}, {status: 503}})},
		{name: "clients are limited separately",
			ann:   map[string]string{"limit-rps": "1", "limit-burst-multiplier": "1"},
			steps: []step{{status: 200}, {status: 200}, {status: 503}, {remote: "10.0.0.2:1", status: 200}, {remote: "[::ffff:10.0.0.2]:2", status: 200}, {remote: "10.0.0.2:1", status: 503}}},
		{name: "limit-rpm", ann: map[string]string{"limit-rpm": "60", "limit-burst-multiplier": "1"},
			steps: cat(burst(61, 200), burst(1, 503), []step{{after: time.Second, status: 200}, {status: 503}})},
		{name: "rps and rpm both apply", ann: map[string]string{"limit-rps": "100", "limit-rpm": "1", "limit-burst-multiplier": "1"},
			steps: cat(burst(2, 200), burst(1, 503))},
		{name: "limit-whitelist exempts", ann: map[string]string{"limit-rps": "1", "limit-burst-multiplier": "1", "limit-whitelist": "10.0.0.0/24"},
			steps: cat(burst(10, 200), []step{{remote: "10.1.0.1:1", status: 200}, {remote: "10.1.0.1:1", status: 200}, {remote: "10.1.0.1:1", status: 503}})},
		{name: "limit-allowlist", ann: map[string]string{"limit-rps": "1", "limit-burst-multiplier": "1", "limit-allowlist": "10.0.0.1"},
			steps: burst(10, 200)},
		{name: "invalid limit ignored", ann: map[string]string{"limit-rps": "fast"}, steps: burst(50, 200), warnings: []string{"limit-rps: invalid value"}},
		{name: "multiplier alone ignored", ann: map[string]string{"limit-burst-multiplier": "3"}, steps: burst(50, 200), warnings: []string{"limit-burst-multiplier: no limit-rps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1e9, 0)}
			p := New(Config{})
			p.now = clock.now
			mw, _, warnings := p.Parse(ingress(tt.ann))
			if tt.warnings != nil {
				checkWarnings(t, warnings, tt.warnings)
			}
			h := http.Handler(backend)
			if mw != nil {
				h = mw(backend)
			}
			for i, s := range tt.steps {
				clock.step(s.after)
				if s.remote == "" {
					s.remote = "10.0.0.1:1"
				}
				if rec := do(t, h, request{remote: s.remote}); rec.Code != s.status {
					t.Fatalf("request %d from %s: %d, want %d", i, s.remote, rec.Code, s.status)
				}
			}
		})
	}
}

// A new Parse (every re-translation) keeps the counts; a changed limit
// starts afresh.
func TestRateLimitSurvivesParse(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	p := New(Config{})
	p.now = clock.now
	ann := map[string]string{"limit-rps": "1", "limit-burst-multiplier": "1"}
	req := request{remote: "10.0.0.1:1"}
	mw, _, _ := p.Parse(ingress(ann))
	do(t, mw(backend), req)
	do(t, mw(backend), req)
	mw, _, _ = p.Parse(ingress(ann))
	if rec := do(t, mw(backend), req); rec.Code != 503 {
		t.Errorf("after a new Parse: %d, want 503", rec.Code)
	}
	p.Forget("app", "web")
	mw, _, _ = p.Parse(ingress(ann))
	if rec := do(t, mw(backend), req); rec.Code != 200 {
		t.Errorf("after Forget: %d, want 200", rec.Code)
	}
	do(t, mw(backend), req)
	ann["limit-rps"] = "2"
	mw, _, _ = p.Parse(ingress(ann))
	if rec := do(t, mw(backend), req); rec.Code != 200 {
		t.Errorf("after a changed limit: %d, want 200", rec.Code)
	}
}

func TestLimitConnections(t *testing.T) {
	p := New(Config{})
	mw, _, _ := p.Parse(ingress(map[string]string{"limit-connections": "2"}))
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Write([]byte("backend"))
	}))
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rec := do(t, h, request{remote: "10.0.0.1:1"}); rec.Code != 200 {
				t.Errorf("in-flight request: %d", rec.Code)
			}
		}()
	}
	<-entered
	<-entered
	if rec := do(t, h, request{remote: "10.0.0.1:2"}); rec.Code != 503 {
		t.Errorf("third concurrent request: %d, want 503", rec.Code)
	}
	if rec := do(t, mw(backend), request{remote: "10.0.0.9:1"}); rec.Code != 200 {
		t.Errorf("another client: %d, want 200", rec.Code)
	}
	close(release)
	wg.Wait()
	if rec := do(t, mw(backend), request{remote: "10.0.0.1:1"}); rec.Code != 200 {
		t.Errorf("after the others finished: %d, want 200", rec.Code)
	}
}

func TestRateLimitForgetsDrainedClients(t *testing.T) {
	defer func(n int) { maxLimitClients = n }(maxLimitClients)
	maxLimitClients = 3
	s := &limitState{excess: map[netip.Addr]*leaky{}}
	t0 := time.Unix(1e9, 0)
	for i := range 3 {
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		s.allow(a, 1, 5, t0)
		s.allow(a, 1, 5, t0) // excess 1
	}
	s.allow(netip.MustParseAddr("10.0.0.3"), 1, 5, t0.Add(500*time.Millisecond))
	if len(s.excess) != 4 {
		t.Fatalf("%d clients kept, want 4 (none drained yet)", len(s.excess))
	}
	s.allow(netip.MustParseAddr("10.0.0.4"), 1, 5, t0.Add(2*time.Second))
	if _, ok := s.excess[netip.MustParseAddr("10.0.0.4")]; !ok || len(s.excess) != 1 {
		t.Errorf("clients kept %v, want only the new one (the others drained)", s.excess)
	}
}

package agent

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBackoff(10*time.Second, 40*time.Second, func() time.Time { return now })
	at := func(d time.Duration) time.Time { return time.Unix(1000, 0).Add(d) }

	steps := []struct {
		name     string
		clock    time.Duration // now
		failAt   time.Duration // event time checked
		next     bool          // record a failure at failAt after checking
		inBO     bool
		left     time.Duration
		delayNow time.Duration
	}{
		{name: "first failure is not in back-off", clock: 0, failAt: 0, next: true, inBO: false, delayNow: 10 * time.Second},
		{name: "second failure waits 10s", clock: 1 * time.Second, failAt: 1 * time.Second, inBO: true, left: 10 * time.Second, delayNow: 10 * time.Second},
		{name: "after 10s it may restart", clock: 11 * time.Second, failAt: 1 * time.Second, next: true, inBO: false, delayNow: 20 * time.Second},
		{name: "third failure waits 20s", clock: 12 * time.Second, failAt: 12 * time.Second, inBO: true, left: 20 * time.Second, delayNow: 20 * time.Second},
		{name: "doubles to the cap", clock: 32 * time.Second, failAt: 32 * time.Second, next: true, inBO: true, left: 20 * time.Second, delayNow: 40 * time.Second},
		{name: "stays at the cap", clock: 72 * time.Second, failAt: 72 * time.Second, next: true, inBO: true, left: 40 * time.Second, delayNow: 40 * time.Second},
		{name: "forgotten after twice the cap", clock: 72*time.Second + 81*time.Second, failAt: 72*time.Second + 81*time.Second, next: true, inBO: false, delayNow: 10 * time.Second},
	}
	for _, s := range steps {
		now = at(s.clock)
		in, left := b.InBackoffSince("k", at(s.failAt))
		if in != s.inBO || (in && left != s.left) {
			t.Errorf("%s: InBackoffSince = %v, %v; want %v, %v", s.name, in, left, s.inBO, s.left)
		}
		if s.next {
			b.Next("k", at(s.failAt))
		}
		if d := b.Delay("k"); d != s.delayNow {
			t.Errorf("%s: delay %v, want %v", s.name, d, s.delayNow)
		}
	}
	b.ForgetPrefix("k")
	if d := b.Delay("k"); d != 0 {
		t.Errorf("delay after ForgetPrefix: %v", d)
	}
}

package framework

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Poll intervals: conditions are first checked often, then less often, so
// that fast conditions finish fast and slow ones do not spin.
const (
	firstPollInterval = 10 * time.Millisecond
	maxPollInterval   = 250 * time.Millisecond
)

// ErrTimeout is wrapped by WaitFor's error when the deadline passes.
var ErrTimeout = errors.New("condition not met before the deadline")

// Eventually polls cond until it returns true, failing the test with msg
// (formatted with args) if that does not happen within timeout. An error from
// cond does not stop the polling (a server may be restarting); the last one is
// reported on timeout. It must be called from the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, error), msg string, args ...any) {
	t.Helper()
	if err := WaitFor(timeout, cond); err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(msg, args...), err)
	}
}

// WaitFor polls cond until it returns true or timeout passes. It returns nil
// on success, or an error wrapping ErrTimeout (and cond's last error).
func WaitFor(timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return WaitForContext(ctx, cond)
}

// WaitForContext polls cond until it returns true or ctx is done.
func WaitForContext(ctx context.Context, cond func() (bool, error)) error {
	start := time.Now()
	interval := firstPollInterval
	var lastErr error
	attempts := 0
	for {
		attempts++
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			elapsed := time.Since(start).Round(time.Millisecond)
			if lastErr != nil {
				return fmt.Errorf("%w (%d attempts in %v; last error: %v)", ErrTimeout, attempts, elapsed, lastErr)
			}
			return fmt.Errorf("%w (%d attempts in %v)", ErrTimeout, attempts, elapsed)
		case <-timer.C:
		}
		interval = min(interval*2, maxPollInterval)
	}
}

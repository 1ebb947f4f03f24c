package memtrim

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// sink keeps the test's garbage reachable until it is dropped.
var sink [][]byte

// TestRunReturnsFreedMemory checks that a quiet interval after a burst of
// garbage returns the freed heap to the operating system.
func TestRunReturnsFreedMemory(t *testing.T) {
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, Options{Interval: 20 * time.Millisecond, QuietBytes: 1 << 30})
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var now runtime.MemStats
		runtime.ReadMemStats(&now)
		if now.HeapReleased > before.HeapReleased && now.HeapIdle-now.HeapReleased < 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("freed memory not returned: idle %d released %d (before: idle %d released %d)",
				now.HeapIdle, now.HeapReleased, before.HeapIdle, before.HeapReleased)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestShouldTrim(t *testing.T) {
	o := Options{QuietBytes: 8 << 20, WorthBytes: 4 << 20}
	for _, tc := range []struct {
		name                        string
		inInterval, sinceTrim, free uint64
		want                        bool
	}{
		{"busy interval", 9 << 20, 100 << 20, 100 << 20, false},
		{"quiet, free pages kept", 1 << 20, 1 << 20, 16 << 20, true},
		{"quiet, garbage made since the last trim", 1 << 20, 6 << 20, 0, true},
		{"quiet, nothing to gain", 1 << 20, 2 << 20, 1 << 20, false},
		{"idle since the last trim", 0, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shouldTrim(tc.inInterval, tc.sinceTrim, tc.free, o); got != tc.want {
				t.Errorf("shouldTrim(%d, %d, %d) = %v, want %v", tc.inInterval, tc.sinceTrim, tc.free, got, tc.want)
			}
		})
	}
}

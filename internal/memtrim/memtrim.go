// Package memtrim returns the memory a long-running process no longer uses
// to the operating system once it goes quiet.
//
// Go's runtime keeps freed heap pages for reuse and returns them slowly;
// after a burst (start-up, a rollout, a large list) an idle Havre would keep
// its high-water mark resident. When little has been allocated over an
// interval, Run forces a collection and returns the free pages at once —
// a few milliseconds of CPU for a small live heap — unless there is nothing
// to gain: no free pages kept and little garbage made since the last trim.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Options tune Run.
type Options struct {
	// Interval between checks (default 30s).
	Interval time.Duration
	// QuietBytes: an interval allocating less than this is idle (default
	// 8 MiB).
	QuietBytes uint64
	// WorthBytes: a quiet interval trims only when the runtime keeps at
	// least this much free heap, or at least this much was allocated since
	// the last trim (garbage a collection would free); default 4 MiB.
	WorthBytes uint64
}

const (
	allocsMetric = "/gc/heap/allocs:bytes"
	freeMetric   = "/memory/classes/heap/free:bytes"
)

// shouldTrim decides at the end of an interval: inInterval and sinceTrim
// are the bytes allocated in it and since the last trim, free the free
// heap pages the runtime keeps.
func shouldTrim(inInterval, sinceTrim, free uint64, o Options) bool {
	return inInterval < o.QuietBytes && (free >= o.WorthBytes || sinceTrim >= o.WorthBytes)
}

// Run trims memory after every interval that allocated little, until ctx
// is done.
func Run(ctx context.Context, o Options) {
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.QuietBytes == 0 {
		o.QuietBytes = 8 << 20
	}
	if o.WorthBytes == 0 {
		o.WorthBytes = 4 << 20
	}
	samples := []metrics.Sample{{Name: allocsMetric}, {Name: freeMetric}}
	read := func() (allocs, free uint64) {
		metrics.Read(samples)
		if samples[0].Value.Kind() == metrics.KindUint64 {
			allocs = samples[0].Value.Uint64()
		}
		if samples[1].Value.Kind() == metrics.KindUint64 {
			free = samples[1].Value.Uint64()
		}
		return allocs, free
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	last, _ := read()
	trimmed := last
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, free := read()
		if shouldTrim(now-last, now-trimmed, free, o) {
			debug.FreeOSMemory()
			now, _ = read()
			trimmed = now
		}
		last = now
	}
}

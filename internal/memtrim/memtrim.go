// Package memtrim returns the memory a long-running process no longer uses
// to the operating system once it goes quiet.
//
// Go's runtime keeps freed heap pages for reuse and returns them slowly;
// after a burst (start-up, a rollout, a large list) an idle Havre would keep
// its high-water mark resident. When little has been allocated over an
// interval, Run forces a collection and returns the free pages at once —
// a few milliseconds of CPU for a small live heap.
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
}

const allocsMetric = "/gc/heap/allocs:bytes"

// Run trims memory after every interval that allocated little, until ctx
// is done.
func Run(ctx context.Context, o Options) {
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.QuietBytes == 0 {
		o.QuietBytes = 8 << 20
	}
	sample := []metrics.Sample{{Name: allocsMetric}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	last := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		quiet := now-last < o.QuietBytes
		last = now
		if quiet {
			debug.FreeOSMemory()
			last = read()
		}
	}
}

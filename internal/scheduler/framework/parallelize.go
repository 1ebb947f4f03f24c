package framework

import (
	"context"
	"sync"
	"sync/atomic"
)

// Parallelizer runs a piece of work over many indexes on a few workers.
type Parallelizer struct {
	workers int
}

// NewParallelizer returns a parallelizer of n workers (at least one).
func NewParallelizer(n int) Parallelizer {
	return Parallelizer{workers: max(1, n)}
}

// Until runs do(i) for every i in [0, pieces) until ctx is done. Workers
// take chunks of indexes so that cheap pieces are not dominated by the
// cost of handing them out; with one worker or few pieces it runs inline.
func (p Parallelizer) Until(ctx context.Context, pieces int, do func(i int)) {
	workers := min(p.workers, pieces)
	if workers <= 1 || pieces < 32 {
		for i := 0; i < pieces; i++ {
			if ctx.Err() != nil {
				return
			}
			do(i)
		}
		return
	}
	chunk := max(1, pieces/(workers*4))
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= pieces {
					return
				}
				for i := start; i < min(start+chunk, pieces); i++ {
					do(i)
				}
			}
		}()
	}
	wg.Wait()
}

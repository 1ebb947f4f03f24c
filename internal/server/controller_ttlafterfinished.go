package server

import (
	"context"

	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/ttlafterfinished"
)

// startTTLAfterFinished starts the controller deleting finished Jobs after
// their ttlSecondsAfterFinished, with upstream's 5 workers
// (--concurrent-ttl-after-finished-syncs).
func startTTLAfterFinished(ctx context.Context, c *controller.Context) error {
	tc, err := ttlafterfinished.New(c.Client, c.Informers, nil)
	if err != nil {
		return err
	}
	go tc.Run(ctx, 5)
	return nil
}

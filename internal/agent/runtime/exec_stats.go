package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execSyncGrace is how much longer than an ExecSync's own timeout the call
// may take, for the runtime to clean up (the kubelet gives its default
// runtime request timeout).
const execSyncGrace = 2 * time.Minute

// TimeoutError is returned by ExecSync when the command did not finish in
// time.
type TimeoutError struct {
	Cmd   []string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("command %q timed out", strings.Join(e.Cmd, " "))
}

// Timeout reports that the error is a timeout (as net.Error does).
func (e *TimeoutError) Timeout() bool { return true }

// ExecSync runs a command in a running container and waits for it, at most
// timeout (0: no limit). A command that did not finish in time gives a
// *TimeoutError; a command that ran gives its exit code and output with a
// nil error, whatever the code.
func (c *CRI) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout+execSyncGrace)
		defer cancel()
	}
	secs := int64(timeout / time.Second)
	if timeout > 0 && secs == 0 {
		secs = 1
	}
	r, err := c.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		if status.Code(err) == codes.DeadlineExceeded || timeout > 0 && isTimeoutMessage(err) {
			return nil, nil, 0, &TimeoutError{Cmd: cmd, After: timeout}
		}
		return nil, nil, 0, err
	}
	return r.Stdout, r.Stderr, r.ExitCode, nil
}

// isTimeoutMessage recognises containerd's report of an exec that ran out
// of time, which older releases send with an Unknown code.
func isTimeoutMessage(err error) bool {
	msg := status.Convert(err).Message()
	return strings.Contains(msg, "timeout") && strings.Contains(msg, "exceeded")
}

// ListContainerStats returns the resource usage of the containers the
// filter selects.
func (c *CRI) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	r, err := c.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: filter})
	if err != nil {
		return nil, err
	}
	return r.Stats, nil
}

// ListPodSandboxStats returns the resource usage of the sandboxes the
// filter selects. Runtimes that do not implement it answer with the
// Unimplemented code.
func (c *CRI) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	r, err := c.Runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: filter})
	if err != nil {
		return nil, err
	}
	return r.Stats, nil
}

package prober

import (
	"context"
	"errors"
	"time"
)

// Execer runs commands in containers (the CRI's ExecSync). A command that
// ran returns its exit code and output with a nil error; one that ran out
// of time returns an error with a Timeout method reporting true.
type Execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error)
}

// IsTimeout reports whether err says a command ran out of time.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Exec runs an exec probe: exit code 0 is a success, any other code or a
// timeout a failure; the output is the command's stdout and stderr.
func Exec(ctx context.Context, ex Execer, containerID string, cmd []string, timeout time.Duration) (Outcome, string, error) {
	if ex == nil {
		return OutcomeFailure, "", errors.New("no runtime to exec in")
	}
	stdout, stderr, code, err := ex.ExecSync(ctx, containerID, cmd, timeout)
	if err != nil {
		if IsTimeout(err) {
			return OutcomeFailure, err.Error(), nil
		}
		return OutcomeFailure, "", err
	}
	out := string(append(stdout, stderr...))
	if code != 0 {
		return OutcomeFailure, out, nil
	}
	return OutcomeSuccess, out, nil
}

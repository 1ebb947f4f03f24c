//go:build !linux

package framework

import (
	"errors"
	"os/exec"
)

func configureChild(*exec.Cmd) {}

// ProcessRSS is only implemented on Linux.
func ProcessRSS(int) (int64, error) {
	return 0, errors.New("ProcessRSS needs /proc (Linux)")
}

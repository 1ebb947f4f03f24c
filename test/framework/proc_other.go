//go:build !linux

package framework

import (
	"errors"
	"os/exec"
	"time"
)

func configureChild(*exec.Cmd) {}

// ProcessRSS is only implemented on Linux.
func ProcessRSS(int) (int64, error) {
	return 0, errors.New("ProcessRSS needs /proc (Linux)")
}

// ProcessCPU needs /proc.
func ProcessCPU(int) (time.Duration, error) {
	return 0, errors.New("ProcessCPU needs /proc (Linux)")
}

package prober

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kind is what a probe is for.
type Kind int

// The probe kinds.
const (
	Liveness Kind = iota
	Readiness
	Startup
)

// String names the kind as the kubelet's Events do ("Liveness probe
// failed: …").
func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Result is what a container's probe currently concludes, once its
// thresholds are met.
type Result int

// The results. Unknown is the startup probe's until it decided.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}

// Outcome is what one run of a handler found.
type Outcome int

// The outcomes of one run. A Warning counts as a success but is reported
// (an HTTP redirect the prober did not follow).
const (
	OutcomeSuccess Outcome = iota
	OutcomeWarning
	OutcomeFailure
)

// Target is the container a handler runs against.
type Target struct {
	// PodIP is the host of httpGet, tcpSocket and grpc handlers that name
	// none.
	PodIP string
	// Container is the container's spec, for named ports.
	Container *corev1.Container
	// ContainerID is the runtime's id, for exec handlers.
	ContainerID string
	// Command is the exec handler's command with its variables expanded
	// (nil: as the spec says).
	Command []string
}

// Run runs a probe handler once with a timeout. A non-nil error means the
// probe could not be run at all (a port name the container does not
// declare, a runtime error), which says nothing of the container's health.
func Run(ctx context.Context, h *corev1.ProbeHandler, timeout time.Duration, t Target, ex Execer) (Outcome, string, error) {
	switch {
	case h.Exec != nil:
		cmd := t.Command
		if cmd == nil {
			cmd = h.Exec.Command
		}
		return Exec(ctx, ex, t.ContainerID, cmd, timeout)
	case h.HTTPGet != nil:
		req, err := NewHTTPGetRequest(h.HTTPGet, t.Container, t.PodIP, "probe")
		if err != nil {
			return OutcomeFailure, "", err
		}
		return HTTP(ctx, req, timeout)
	case h.TCPSocket != nil:
		port, err := ResolvePort(h.TCPSocket.Port, t.Container)
		if err != nil {
			return OutcomeFailure, "", err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.PodIP
		}
		return TCP(ctx, host, port, timeout)
	case h.GRPC != nil:
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		port, err := ResolvePort(intstr.FromInt32(h.GRPC.Port), t.Container)
		if err != nil {
			return OutcomeFailure, "", err
		}
		return GRPC(ctx, t.PodIP, port, service, timeout)
	}
	return OutcomeFailure, "", errors.New("missing probe handler")
}

// ResolvePort turns a probe's or hook's port, a number or the name of one
// of the container's ports, into a number.
func ResolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		if c != nil {
			for _, cp := range c.Ports {
				if cp.Name == p.StrVal {
					port = int(cp.ContainerPort)
					break
				}
			}
		}
		if port < 0 {
			// Perhaps a number written as a string.
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return 0, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	}
	if port <= 0 || port > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", port)
	}
	return port, nil
}

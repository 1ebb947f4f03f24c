package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxMsgSize bounds CRI messages, as the kubelet does (16 MiB).
const maxMsgSize = 16 << 20

// CRI is a client of a CRI runtime and image service on one endpoint.
type CRI struct {
	conn     *grpc.ClientConn
	Runtime  runtimeapi.RuntimeServiceClient
	Images   runtimeapi.ImageServiceClient
	endpoint string
}

// Dial connects to a CRI endpoint: "unix:///path", "/path" or
// "unix:/path". The connection is made lazily; use WaitReady to know that
// the runtime answers.
func Dial(endpoint string) (*CRI, error) {
	path, err := socketPath(endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("passthrough:///"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
		// Reconnect quickly: the runtime is often just starting (or
		// restarting) when it is dialled, and gRPC's default first retry
		// comes after a second.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", endpoint, err)
	}
	return &CRI{
		conn:     conn,
		Runtime:  runtimeapi.NewRuntimeServiceClient(conn),
		Images:   runtimeapi.NewImageServiceClient(conn),
		endpoint: endpoint,
	}, nil
}

// socketPath returns the unix socket path of a CRI endpoint.
func socketPath(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		endpoint = strings.TrimPrefix(endpoint, "unix://")
	case strings.HasPrefix(endpoint, "unix:"):
		endpoint = strings.TrimPrefix(endpoint, "unix:")
	case strings.Contains(endpoint, "://"):
		return "", fmt.Errorf("CRI endpoint %q: only unix sockets are supported", endpoint)
	}
	if endpoint == "" || !strings.HasPrefix(endpoint, "/") {
		return "", fmt.Errorf("CRI endpoint %q: want an absolute unix socket path", endpoint)
	}
	return endpoint, nil
}

// Endpoint returns the endpoint the client was dialled with.
func (c *CRI) Endpoint() string { return c.endpoint }

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Version asks the runtime for its name and version.
func (c *CRI) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	return c.Runtime.Version(ctx, &runtimeapi.VersionRequest{Version: "v1"})
}

// WaitReady polls the Version RPC until it answers or timeout passes.
func (c *CRI) WaitReady(ctx context.Context, timeout time.Duration) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 20 * time.Millisecond
	var lastErr error
	for {
		callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := c.Version(callCtx)
		callCancel()
		if err == nil {
			return v, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("CRI runtime at %s did not answer within %v: %w", c.endpoint, timeout, errors.Join(ctx.Err(), lastErr))
		case <-time.After(interval):
		}
		interval = min(2*interval, 500*time.Millisecond)
	}
}

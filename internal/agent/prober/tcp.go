package prober

import (
	"context"
	"net"
	"strconv"
	"time"
)

// TCP runs a tcpSocket probe: a connection opened in time is a success.
func TCP(ctx context.Context, host string, port int, timeout time.Duration) (Outcome, string, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return OutcomeFailure, err.Error(), nil
	}
	if err := conn.Close(); err != nil {
		return OutcomeFailure, "", err
	}
	return OutcomeSuccess, "", nil
}

// Package ingress_test checks the nodes' ingress proxy end to end: a real
// `havre server` with its agent runs the test/images/echo backend, and
// Go's HTTP, WebSocket and gRPC clients reach it through Ingresses on the
// proxy's ports (the framework's free ports for --ingress-http-port and
// --ingress-https-port).
package ingress_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

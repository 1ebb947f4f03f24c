// Package certificates_test checks the certificates controller against a
// real ACME CA, Pebble (built from go.mod's tool), on loopback: HTTP-01
// and TLS-ALPN-01 issuance into an Ingress's TLS Secret, renewal of
// short-lived certificates before they expire, and one order per name
// whatever the number of Ingresses and challenge readers. Stand-in
// challenge servers answer from acme.Readers of the challenges Secret, as
// the proxies do.
package certificates_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// Package gateway_test checks Havre's Gateway API end to end: upstream's
// standard-channel definitions installed at start and Established, its
// ValidatingAdmissionPolicy in force, the GatewayClass havre, and the
// statuses Havre's gateway controller writes.
package gateway_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

var ctx = framework.RequestContext

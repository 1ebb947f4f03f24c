package gatewayconformance

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

// TestMain removes the havre binary and the image archives the framework
// built for this package once its tests are done.
func TestMain(m *testing.M) { framework.Main(m) }

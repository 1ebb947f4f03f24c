// Package network_test checks Services, endpoints, the service proxy and
// cluster DNS end to end, on clusters whose nodes are network namespaces
// (framework.StartCluster), with real kubectl and containerd.
package network_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

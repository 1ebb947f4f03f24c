// Package podsecurity_test checks Pod Security Admission end to end with
// the havre binary and real kubectl: a server without agent (pods are
// admitted, never run), configured by --admission-control-config-file.
// Upstream checks this plugin in its integration tests and in
// k8s.io/pod-security-admission/test rather than in conformance e2e specs,
// so the test is named after the feature.
package podsecurity_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// Package admission_test is the end-to-end suite of admission webhooks: a
// `havre server` with its node agent runs test/images/webhook as a pod
// behind a Service, and Mutating/ValidatingWebhookConfigurations point the
// server at it. The tests are named after upstream's
// [sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] specs
// where they check the same behaviour. They need root and containerd.
// policy_test.go checks ValidatingAdmissionPolicy and
// MutatingAdmissionPolicy, which need no pods (a server without agent).
package admission_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

// Package admission_test checks admission end to end against the havre
// binary: ValidatingAdmissionPolicies (policy_test.go).
package admission_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

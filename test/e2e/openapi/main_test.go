// Package openapi_test checks, against the real havre binary, the OpenAPI
// documents the server publishes (/openapi/v2, /openapi/v3) with the
// clients that read them: kubectl explain, kubectl's default validation of
// create/apply, and client-go's OpenAPI v2 and v3 clients.
package openapi_test

import (
	"testing"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

package core

import "github.com/havre/havre/internal/registry"

// ServiceAccountStrategy governs serviceaccounts. Upstream validates only
// their metadata, which the API server does generically.
type ServiceAccountStrategy struct{ registry.DefaultStrategy }

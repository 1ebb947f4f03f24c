//go:build tools

// Package hack pins modules that Havre's code and tests depend on before
// every importer exists, so concurrent work does not fight over go.mod.
package hack

import (
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "gopkg.in/evanphx/json-patch.v4"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "sigs.k8s.io/yaml"
)

// Package version says which Havre this is and which Kubernetes API it
// speaks.
package version

import (
	"fmt"
	"runtime"

	apiversion "k8s.io/apimachinery/pkg/version"
)

// Set at build time with -ldflags "-X github.com/havre/havre/internal/version.Havre=...".
var (
	Havre     = "0.1.0-dev"
	GitCommit = ""
	BuildDate = "1970-01-01T00:00:00Z"
)

// Kubernetes is the Kubernetes release whose API Havre serves.
const (
	KubernetesMajor = "1"
	KubernetesMinor = "37"
	Kubernetes      = "v1.37.2"
)

// Info is what /version reports: a semver gitVersion that carries the
// Kubernetes version with Havre's as build metadata, as k3s does.
func Info() apiversion.Info {
	return apiversion.Info{
		Major:      KubernetesMajor,
		Minor:      KubernetesMinor,
		GitVersion: fmt.Sprintf("%s+havre.%s", Kubernetes, Havre),
		GitCommit:  GitCommit,
		BuildDate:  BuildDate,
		GoVersion:  runtime.Version(),
		Compiler:   runtime.Compiler,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// Command kubectl is the upstream kubectl, built from the k8s.io/kubectl
// version pinned in go.mod, so that the end-to-end tests drive Havre with the
// very client the module depends on instead of whatever kubectl happens to be
// installed. The test framework builds it into a cache directory; it is never
// committed as a binary.
//
// It runs the same code as cmd/havre-kubectl (internal/kubectlcmd), without
// the admin kubeconfig `havre kubectl` sets.
package main

import "github.com/havre/havre/internal/kubectlcmd"

func main() { kubectlcmd.Main() }

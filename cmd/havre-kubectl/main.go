// Command havre-kubectl is the upstream kubectl (k8s.io/kubectl at the
// version in go.mod) that `havre kubectl` runs with the admin kubeconfig of
// the local Havre server. It is a binary of its own so that kubectl's
// packages, and their initialisation, stay out of `havre server`.
//
// Run directly it is a plain kubectl: it uses KUBECONFIG, --kubeconfig or
// ~/.kube/config. `make build` stamps it with the Kubernetes version that
// k8s.io/kubectl corresponds to, as upstream's release builds are stamped.
package main

import "github.com/havre/havre/internal/kubectlcmd"

func main() { kubectlcmd.Main() }

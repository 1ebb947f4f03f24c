// Command havre is a whole Kubernetes-compatible cluster in one binary.
package main

import (
	"os"

	"github.com/havre/havre/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}

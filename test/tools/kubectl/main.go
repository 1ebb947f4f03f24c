// Command kubectl is the upstream kubectl, built from the k8s.io/kubectl
// version pinned in go.mod, so that the end-to-end tests drive Havre with the
// very client the module depends on instead of whatever kubectl happens to be
// installed. The test framework builds it into a cache directory; it is never
// committed as a binary.
//
// Upstream's cmd/kubectl runs the command through component-base's
// cli.RunNoErrOutput, which would pull Prometheus and OpenTelemetry into
// go.mod; this main does the parts of it that matter for a test client:
// klog's -v/--vmodule flags, silenced cobra errors, and kubectl's own error
// printing and exit codes.
package main

import (
	"flag"

	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()

	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		command.PersistentFlags().AddGoFlag(klogFlags.Lookup(name))
	}
	// Errors are printed by util.CheckErr below, in kubectl's format
	// ("Error from server (NotFound): ..."), not by cobra.
	command.SilenceErrors = true

	err := command.Execute()
	klog.Flush()
	if err != nil {
		util.CheckErr(err)
	}
}

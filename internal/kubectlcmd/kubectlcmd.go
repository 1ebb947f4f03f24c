// Package kubectlcmd runs the upstream kubectl command
// (k8s.io/kubectl/pkg/cmd) as a program's main function. It is shared by
// cmd/havre-kubectl, the kubectl `havre kubectl` runs, and test/tools/kubectl,
// the kubectl of the end-to-end tests.
//
// It is kept out of everything `havre server` links: kubectl's packages
// weigh several megabytes of package initialisation that the server must not
// pay at start.
//
// Upstream's cmd/kubectl runs the command through component-base's
// cli.RunNoErrOutput, which would pull Prometheus and OpenTelemetry into
// go.mod; Main does the parts of it that matter: klog's -v/--vmodule flags,
// silenced cobra errors, and kubectl's own error printing and exit codes.
package kubectlcmd

import (
	"flag"

	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

// Main runs kubectl with os.Args and exits the process with kubectl's exit
// code when the command fails; it returns when the command succeeded.
func Main() {
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

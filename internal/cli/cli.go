// Package cli defines havre's command line: one cobra command per
// subcommand, each turning flags into the options of the package that does
// the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/havre/havre/internal/memtrim"
	"github.com/havre/havre/internal/scheduler"
	"github.com/havre/havre/internal/server"
	"github.com/havre/havre/internal/version"
)

var started = time.Now()

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	root := NewRootCommand()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

// NewRootCommand returns the havre command with its subcommands.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "havre",
		Short:         "Havre: a lightweight Kubernetes-compatible cluster in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Info().GitVersion,
	}
	root.AddCommand(newServerCommand())
	root.AddCommand(newKubectlCommand())
	root.AddCommand(newAgentCommand(), newImageCommand())
	return root
}

func newServerCommand() *cobra.Command {
	o := server.Options{}
	var verbose bool
	var nf agentFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Havre server: the API server, its store and the controllers",
		Long: `Run a Havre server: the API server, its store, the controllers and (unless
--disable-agent) the node agent of this machine, with its service proxy and
cluster DNS.

Stopping the server (SIGTERM) leaves this node's pods running, as a node's
pods outlive its agent; the next start adopts them. To stop the node cleanly
or to uninstall, stop the server, then run
  havre agent reset --data-dir DIR
which removes the pods, their mounts, the pod bridge and Havre's nftables
tables (the data directory itself stays; remove it to forget the cluster).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setupLogging(verbose)
			o.Started = started
			if _, err := scheduler.LoadConfig(o.Controllers.SchedulerConfig); err != nil {
				return err
			}
			if err := checkACMEFlags(&o.Controllers); err != nil {
				return err
			}
			o.Agent = nf.options()
			o.NodeIPAM = !o.DisableAgent || cmd.Flags().Changed("cluster-cidr")
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go memtrim.Run(ctx, memtrim.Options{})
			err := server.Run(ctx, o)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			if err == nil {
				slog.Info("havre server stopped")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "/var/lib/havre", "directory for the store, certificates and kubeconfig")
	f.StringVar(&o.BindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	f.IntVar(&o.HTTPSPort, "https-port", 6443, "port the API server listens on")
	f.StringSliceVar(&o.TLSSANs, "tls-san", nil, "extra host names or IPs for the serving certificate")
	f.DurationVar(&o.CompactionInterval, "compaction-interval", 5*time.Minute, "how often store history older than one interval is compacted")
	f.StringVar(&o.ServiceCIDR, "service-cidr", "10.43.0.0/16", "IPv4 range of Service cluster IPs")
	f.StringVar(&o.NodePortRange, "service-node-port-range", "30000-32767", "range of Service node ports")
	f.BoolVar(&o.Profiling, "profiling", true, "serve Go profiles at /debug/pprof to authorized users")
	f.BoolVar(&o.DisableAgent, "disable-agent", false, "do not run a node agent in this process")
	f.StringVar(&o.Controllers.ClusterCIDR, "cluster-cidr", "10.42.0.0/16", "IPv4 range nodes' pod CIDRs (a /24 each) are taken from (with --disable-agent, pod CIDRs are assigned only when this is given)")
	f.StringSliceVar(&o.Controllers.Controllers, "controllers", []string{"*"}, "controllers to run, as kube-controller-manager's --controllers: '*' for all, 'name' to enable and '-name' to disable one (e.g. *,-deployment)")
	f.StringVar(&o.Controllers.SchedulerConfig, "scheduler-config", "", "path of a KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1) for the scheduler; empty: upstream's default profile")
	f.StringVar(&o.AdmissionControlConfigFile, "admission-control-config-file", "", "path of an AdmissionConfiguration file (apiserver.config.k8s.io/v1), as kube-apiserver's; its PodSecurity entry configures Pod Security Admission (empty: enforce privileged, warn and audit baseline)")
	f.StringVar(&o.AdvertiseAddress, "advertise-address", "", "address the kubernetes Service's endpoints point at (default: --bind-address when it is a routable address, else the node's IP)")
	f.StringVar(&o.EncryptionProviderConfig, "encryption-provider-config", "", "path of an EncryptionConfiguration file (apiserver.config.k8s.io/v1, as kube-apiserver's) saying how resources are encrypted in the store; default: <data-dir>/server/encryption-config.yaml, generated at first start (Secrets encrypted with secretbox)")
	addNodeLifecycleFlags(f, &o.Controllers)
	addACMEFlags(f, &o.Controllers)
	nf.add(f)
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	return cmd
}

func setupLogging(verbose bool) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/agent"
	"github.com/havre/havre/internal/agent/images"
	"github.com/havre/havre/internal/agent/runtime"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/memtrim"
	"github.com/havre/havre/internal/pki"
)

// agentFlags are the node flags `havre server` and `havre agent` share.
type agentFlags struct {
	nodeName        string
	nodeIP          string
	runtimeEndpoint string
	streamingPort   int
	cniBridge       string
	clusterDomain   string
	clusterDNS      []string
	resolvConf      string
	backend         string
	volumesDir      string
	volumeBacking   string
	disableIngress  bool
	ingressHTTP     int
	ingressHTTPS    int
	ingressLog      bool
}

// options are the agent options the flags give.
func (f *agentFlags) options() agent.Options {
	return agent.Options{
		NodeName: f.nodeName, NodeIP: f.nodeIP, RuntimeEndpoint: f.runtimeEndpoint, StreamingPort: f.streamingPort,
		CNIBridge: f.cniBridge, ClusterDomain: f.clusterDomain, ClusterDNS: f.clusterDNS, ResolvConf: f.resolvConf, PodNetworkBackend: f.backend,
		VolumesDir: f.volumesDir, VolumeBacking: f.volumeBacking,
		DisableIngress: f.disableIngress, IngressHTTPPort: f.ingressHTTP, IngressHTTPSPort: f.ingressHTTPS, IngressAccessLog: f.ingressLog,
	}
}

func (f *agentFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.nodeName, "node-name", "", "name of this node (default: the host name)")
	fs.StringVar(&f.nodeIP, "node-ip", "", "IPv4 address of this node (default: the address of the default route's interface)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", agent.DefaultClusterDomain, "the cluster's DNS domain")
	fs.StringVar(&f.backend, "pod-network-backend", "vxlan", "how the nodes' pod networks are joined: vxlan (an overlay, any underlay), direct (routes; every node on one L2 segment) or auto (direct to nodes on this node's segment, vxlan to the others)")
	fs.StringVar(&f.resolvConf, "resolv-conf", agent.DefaultResolvConf, "the host's resolver configuration: pods with dnsPolicy Default get it, cluster DNS forwards to its nameservers")
	fs.StringSliceVar(&f.clusterDNS, "cluster-dns", nil, "DNS server addresses pods resolve with (default: the kube-system/kube-dns Service's cluster IP, answered by this node)")
	fs.StringVar(&f.cniBridge, "cni-bridge", "havre0", "name of the bridge pods are attached to")
	_ = fs.MarkHidden("cni-bridge")
	fs.IntVar(&f.streamingPort, "streaming-port", agent.DefaultStreamingPort, "port of the node's streaming API (logs, exec, attach, port-forward), which the API server proxies to")
	fs.StringVar(&f.volumesDir, "volumes-dir", "", "directory of this node's local volumes (StorageClass provisioner havre.io/local; default <data-dir>/volumes)")
	fs.StringVar(&f.volumeBacking, "volume-backing", agent.DefaultVolumeBacking, "how local volumes are kept: auto (btrfs or xfs when --volumes-dir is on one, else dir), btrfs (subvolumes with quota groups), xfs (project quotas, reflink snapshots), loop (an ext4 image file per volume) or dir (plain directories; sizes not enforced)")
	fs.BoolVar(&f.disableIngress, "disable-ingress", false, "do not run this node's HTTP(S) proxy for Ingresses")
	fs.IntVar(&f.ingressHTTP, "ingress-http-port", agent.DefaultIngressHTTPPort, "port of this node's ingress proxy for HTTP (on every address)")
	fs.IntVar(&f.ingressHTTPS, "ingress-https-port", agent.DefaultIngressHTTPSPort, "port of this node's ingress proxy for HTTPS (on every address)")
	fs.BoolVar(&f.ingressLog, "ingress-access-log", false, "log a line per request the ingress proxy serves")
	fs.StringVar(&f.runtimeEndpoint, "container-runtime-endpoint", "", "CRI endpoint of an existing runtime (default: run a containerd of the agent's own under <data-dir>/agent/containerd)")
}

func newAgentCommand() *cobra.Command {
	var (
		dataDir, serverURL, token, tokenFile, caFile string
		clusterCIDR, serviceCIDR                     string
		nf                                           agentFlags
		hf                                           hollowFlags
		verbose                                      bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent that joins a Havre server and runs the pods bound to this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setupLogging(verbose)
			if serverURL == "" {
				return errors.New("--server is required (https://HOST:6443)")
			}
			if token == "" && tokenFile != "" {
				data, err := os.ReadFile(tokenFile)
				if err != nil {
					return err
				}
				token = strings.TrimSpace(string(data))
			}
			if token == "" {
				return fmt.Errorf("--token or --token-file is required (the server's join token is in <server-data-dir>/%s/%s)", auth.ServerDirName, auth.JoinTokenFile)
			}
			if caFile == "" {
				caFile = filepath.Join(dataDir, pki.DirName, pki.CACertFile)
				if _, err := os.Stat(caFile); err != nil {
					return fmt.Errorf("--ca-file is required: the cluster CA certificate (<server-data-dir>/%s/%s)", pki.DirName, pki.CACertFile)
				}
			}
			cfg := &rest.Config{Host: serverURL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go memtrim.Run(ctx, memtrim.Options{})
			var err error
			if hf.count > 0 {
				err = hf.run(ctx, cfg)
			} else {
				o := nf.options()
				o.DataDir, o.RESTConfig, o.ClusterCIDR, o.ServiceCIDR = dataDir, cfg, clusterCIDR, serviceCIDR
				err = agent.Run(ctx, o)
			}
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			if err == nil {
				slog.Info("havre agent stopped")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "/var/lib/havre", "directory for the agent's containerd, pod files and logs (under agent/)")
	f.StringVar(&serverURL, "server", "", "URL of the Havre server (https://HOST:6443)")
	f.StringVar(&token, "token", "", "the cluster join token")
	f.StringVar(&tokenFile, "token-file", "", "file holding the cluster join token")
	f.StringVar(&caFile, "ca-file", "", "the cluster CA certificate (default: <data-dir>/tls/ca.crt if present)")
	f.StringVar(&clusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "the cluster's pod network, as the server's --cluster-cidr (traffic leaving it is masqueraded)")
	f.StringVar(&serviceCIDR, "service-cidr", agent.DefaultServiceCIDR, "the Services' range, as the server's --service-cidr")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug messages")
	nf.add(f)
	hf.add(f)

	var volumesDir string
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Remove this node's pods, mounts, pod bridge and nftables tables, and stop the agent's containerd (the agent or server must be stopped)",
		Long: `Tear this node down after its agent (havre agent, or havre server with its
agent) stopped: stop and remove every pod the agent ran, stop the agent's
containerd, unmount what is mounted under <data-dir>/agent and the loop-mounted local
volumes (--volumes-dir; their images stay), and remove the
pod bridge (with its routes) and Havre's nftables tables (service proxy,
masquerading). Works on a server's data dir too. Images and files stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setupLogging(verbose)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			return errors.Join(agent.Reset(ctx, dataDir, ""), agent.ResetVolumes(agent.VolumesDir(dataDir, volumesDir)))
		},
	}
	reset.Flags().StringVar(&dataDir, "data-dir", "/var/lib/havre", "the agent's data directory")
	reset.Flags().StringVar(&volumesDir, "volumes-dir", "", "the node's local volumes directory, as the agent's --volumes-dir (default <data-dir>/volumes): its loop-mounted volumes are unmounted")
	cmd.AddCommand(reset)
	return cmd
}

// imageRuntime is what `havre image` talks to.
type imageRuntime struct {
	dataDir, endpoint string
}

func (r imageRuntime) layout() runtime.Layout {
	return runtime.Layout{Dir: filepath.Join(r.dataDir, "agent", "containerd")}
}

// check fails when the agent's containerd is not running.
func (r imageRuntime) check() error {
	if r.endpoint != "" {
		return nil
	}
	if _, err := os.Stat(r.layout().Socket()); err != nil {
		return fmt.Errorf("the node's containerd is not running (no %s): start `havre server` or `havre agent` with --data-dir %s", r.layout().Socket(), r.dataDir)
	}
	return nil
}

func (r imageRuntime) dial() (*runtime.CRI, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	ep := r.endpoint
	if ep == "" {
		ep = r.layout().Socket()
	}
	return runtime.Dial(ep)
}

func newImageCommand() *cobra.Command {
	var r imageRuntime
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the images of this node's container runtime",
	}
	cmd.PersistentFlags().StringVar(&r.dataDir, "data-dir", "/var/lib/havre", "the agent's data directory")
	cmd.PersistentFlags().StringVar(&r.endpoint, "container-runtime-endpoint", "", "CRI endpoint (default: the agent's containerd)")

	importCmd := &cobra.Command{
		Use:   "import FILE.tar...",
		Short: "Import images from OCI or docker archives (`docker save` output)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.check(); err != nil {
				return err
			}
			l := r.layout()
			im := images.Importer{Address: l.Socket(), Snapshotter: runtime.ConfiguredSnapshotter(l.Config())}
			if r.endpoint != "" {
				path, _ := strings.CutPrefix(r.endpoint, "unix://")
				im.Address = path
			}
			for _, file := range args {
				if _, err := im.ImportFile(cmd.Context(), file, cmd.ErrOrStderr()); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			return nil
		},
	}
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cri, err := r.dial()
			if err != nil {
				return err
			}
			defer cri.Close()
			list, err := images.List(cmd.Context(), cri.Images)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tID\tSIZE")
			for _, img := range list {
				id := strings.TrimPrefix(img.ID, "sha256:")
				if len(id) > 13 {
					id = id[:13]
				}
				for _, tag := range img.Tags {
					fmt.Fprintf(tw, "%s\t%s\t%.1fMB\n", tag, id, float64(img.Size)/1e6)
				}
			}
			return tw.Flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cri, err := r.dial()
			if err != nil {
				return err
			}
			defer cri.Close()
			var errs []error
			for _, name := range args {
				if err := images.Remove(cmd.Context(), cri.Images, name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", name)
			}
			return errors.Join(errs...)
		},
	}
	cmd.AddCommand(importCmd, ls, rm)
	return cmd
}

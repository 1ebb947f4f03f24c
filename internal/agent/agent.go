package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/images"
	"github.com/havre/havre/internal/agent/runtime"
	"github.com/havre/havre/internal/agent/volumes"
	"github.com/havre/havre/internal/network/netpol"
	"github.com/havre/havre/internal/version"
	"github.com/havre/havre/internal/volume/local"
)

// Options configure the agent.
type Options struct {
	// DataDir is Havre's data directory; the agent keeps its files in
	// <DataDir>/agent.
	DataDir string
	// NodeName names the Node (default: the host name, lower-cased).
	NodeName string
	// RuntimeEndpoint is an existing CRI runtime to use; when empty the
	// agent runs its own containerd.
	RuntimeEndpoint string
	// RESTConfig reaches the API server.
	RESTConfig *rest.Config
	// NodeLabels are added to the Node's labels.
	NodeLabels map[string]string
	// ContainerdBinary is the containerd executable (default: from PATH).
	ContainerdBinary string
	// CNIBinDirs are searched for the CNI plugins (default /usr/lib/cni,
	// /opt/cni/bin).
	CNIBinDirs []string
	// CNIBridge names the pods' bridge (default havre0).
	CNIBridge string
	// ClusterCIDR is the cluster's pod network (traffic leaving it is
	// masqueraded; the service proxy masquerades ClusterIP traffic from
	// outside it). Default 10.42.0.0/16.
	ClusterCIDR string
	// ServiceCIDR is the Services' range (traffic to unallocated addresses
	// in it is dropped). Default 10.43.0.0/16.
	ServiceCIDR string
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// ClusterDNS are the addresses ClusterFirst pods resolve with (default:
	// the kube-system/kube-dns Service's cluster IP).
	ClusterDNS []string
	// PodNetworkBackend joins the nodes' pod networks: vxlan (default),
	// direct (routes over the nodes' own segment) or auto.
	PodNetworkBackend string
	// ResolvConf is the host's resolver configuration (default
	// /etc/resolv.conf): Default pods get it, cluster DNS forwards to its
	// nameservers.
	ResolvConf string
	// NodeIP is the node's address (default: the address of the interface
	// of the default route, else of the first interface up).
	NodeIP string
	// StreamingPort is the port of the streaming API the API server proxies
	// logs, exec, attach and port-forward to (0: 10250; -1: none).
	StreamingPort int
	// VolumesDir holds the node's local volumes (default
	// <DataDir>/volumes).
	VolumesDir string
	// VolumeBacking is how they are kept: auto (default), btrfs, xfs,
	// loop or dir.
	VolumeBacking string
	// DisableIngress turns the node's HTTP(S) proxy for Ingresses off;
	// IngressHTTPPort and IngressHTTPSPort are where it listens (0: 80 and
	// 443), on every address.
	DisableIngress                    bool
	IngressHTTPPort, IngressHTTPSPort int
	// IngressAccessLog logs a line per request the proxy serves.
	IngressAccessLog bool
	// Ready, when set, is closed once the node is registered and the agent
	// runs pods.
	Ready chan<- struct{}
}

// Files under <data-dir>/agent.
type layout struct {
	root, containerd, cniConf, cniIPAM, logs, pods, cache string
}

func newLayout(dataDir string) layout {
	root := filepath.Join(dataDir, "agent")
	return layout{
		root:       root,
		containerd: filepath.Join(root, "containerd"),
		cniConf:    filepath.Join(root, "cni", "net.d"),
		cniIPAM:    filepath.Join(root, "cni", "ipam"),
		logs:       filepath.Join(root, "logs"),
		pods:       filepath.Join(root, "pods"),
		cache:      filepath.Join(root, "cache"),
	}
}

// Agent runs the pods of one node.
type Agent struct {
	opts     Options
	nodeName string
	dirs     layout

	client      kubernetes.Interface
	rt          Runtime
	cri         *runtime.CRI
	containerd  *runtime.Containerd
	runtimeName string
	runtimeVer  string
	ownRuntime  bool
	hostDNS     *runtimeapi.DNSConfig
	// clusterDNSServers ([]string) is where ClusterFirst pods resolve.
	clusterDNSServers atomic.Value

	statusKick chan struct{}

	// streamingPort is where the streaming API listens (node
	// daemonEndpoints.kubeletEndpoint).
	streamingPort int32

	// policer enforces NetworkPolicy for the node's pods once the pod
	// network is up (nil before).
	policer atomic.Pointer[netpol.Policer]
	// backing keeps the node's local volumes (storage.go).
	backing  local.Backing
	cniCIDR  atomic.Value // string: the pod CIDR the CNI configuration was written for
	podMTU   atomic.Int64 // the pods' MTU (the overlay's), once the network is up
	recorder record.EventRecorder
	objects  objectSource

	podIndexer cache.Indexer
	// localPods (*cache.Indexer) is podIndexer for readers on other
	// goroutines (cluster DNS) once the pod informer exists.
	localPods atomic.Value
	services  func(namespace string) []*corev1.Service
	ipCache   sync.Map // sandbox id → []string
	statuses  statusCache
	crashBO   *backoff
	pullBO    *backoff
	sandboxBO *backoff
	now       func() time.Time

	// Probes (probes.go), the ConfigMaps and Secrets pods use, watched
	// (objects.go), tmpfs volumes (tmpfs.go) and resource usage (stats.go).
	probes  probeManager
	watched *objectCache
	mounter mounter
	stats   statsCollector

	// Claim volumes (volumes_claims.go): claims reads claims and
	// PersistentVolumes (nil: the API); mountedClaims ([]mountedClaim by
	// pod UID) are those mounted, for their stats; volumeUsage, when set,
	// gives a volume's used and total bytes from its backing (a quota's
	// figures, better than a walk of the directory) by PersistentVolume
	// name, ok false for volumes it does not hold.
	claims        volumes.Getter
	mountedClaims sync.Map
	volumeUsage   func(ctx context.Context, pv string) (used, capacity int64, ok bool)

	factsMu     sync.RWMutex
	hostIPs     []string
	machine     machineInfo
	allocatable corev1.ResourceList

	workersMu sync.Mutex
	workers   map[types.UID]*podWorker
	workerCtx context.Context
	workersWG sync.WaitGroup
	stopping  bool
}

// DefaultNodeIP is the address a node takes without --node-ip: that of
// the default route's interface, else of the first interface up.
func DefaultNodeIP() (net.IP, error) { return internalIP() }

// DefaultNodeName is the host name, lower-cased, as the kubelet names nodes.
func DefaultNodeName() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return strings.ToLower(strings.TrimSpace(h)), nil
}

// Run runs the agent until ctx is done. It returns an error if the node
// cannot be set up (runtime, images, registration); afterwards failures are
// retried. On return the agent's containerd is stopped; pods keep running
// and are adopted by the next run.
func Run(ctx context.Context, o Options) error {
	if o.RESTConfig == nil {
		return errors.New("agent: no API server configuration")
	}
	name := o.NodeName
	if name == "" {
		var err error
		if name, err = DefaultNodeName(); err != nil {
			return fmt.Errorf("node name: %w (pass --node-name)", err)
		}
	}
	if o.NodeIP != "" {
		if ip := net.ParseIP(o.NodeIP); ip == nil || ip.To4() == nil {
			return fmt.Errorf("--node-ip %q: want an IPv4 address", o.NodeIP)
		}
	}
	if len(o.CNIBinDirs) == 0 {
		o.CNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	a := &Agent{
		opts:     o,
		nodeName: name,
		dirs:     newLayout(o.DataDir),
		crashBO:  newBackoff(initialBackoff, maxBackoff, nil),
		pullBO:   newBackoff(initialBackoff, maxBackoff, nil),
		// Sandbox creation retries start sooner (a network that is being
		// set up comes up in a second) and stop at a minute.
		sandboxBO: newBackoff(time.Second, time.Minute, nil),
		now:       time.Now,
		workers:   map[types.UID]*podWorker{},
		hostDNS:   hostDNS(o.ResolvConf),

		statusKick: make(chan struct{}, 1),
	}
	for _, d := range []string{a.dirs.root, a.dirs.logs, a.dirs.pods, a.dirs.cache} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	if err := a.openVolumes(ctx); err != nil {
		return err
	}
	started := time.Now()
	if err := a.startRuntime(ctx); err != nil {
		return err
	}
	defer a.stopRuntime()
	slog.Info("container runtime ready", "runtime", a.runtimeName, "version", a.runtimeVer, "endpoint", a.cri.Endpoint(),
		"took", time.Since(started).Round(time.Millisecond).String())

	cfg := rest.CopyConfig(o.RESTConfig)
	cfg.UserAgent = fmt.Sprintf("havre-agent/%s (%s)", version.Havre, name)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	a.client = client
	a.objects = apiObjects{client: client}
	a.refreshFacts()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: name})

	// The streaming API listens before the node registers, so that the
	// node's daemon endpoint is known.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := a.startStreaming(ctx, &wg); err != nil {
		return err
	}
	if err := a.registerNode(ctx); err != nil {
		return err
	}
	slog.Info("node registered", "node", name, "took", time.Since(started).Round(time.Millisecond).String())

	// On return: cancel, then wait for the pod workers, then for the
	// loops (deferred calls run last first).
	defer a.stopWorkers()
	defer cancel()
	if err := a.startNodeLoops(ctx, &wg); err != nil {
		return err
	}
	if err := a.startPods(ctx, &wg); err != nil {
		return err
	}
	if err := a.startStorage(ctx, &wg, cfg); err != nil {
		return err
	}
	slog.Info("node agent is running pods", "node", name, "startup", time.Since(started).Round(time.Millisecond).String())
	if o.Ready != nil {
		close(o.Ready)
	}
	<-ctx.Done()
	return nil
}

func (a *Agent) startRuntime(ctx context.Context) error {
	endpoint := a.opts.RuntimeEndpoint
	var importer images.Importer
	if endpoint == "" {
		a.ownRuntime = true
		cniBin, err := runtime.FindCNIBinDir(a.opts.CNIBinDirs...)
		if err != nil {
			return err
		}
		l := runtime.Layout{Dir: a.dirs.containerd}
		cfg := runtime.ContainerdConfig{
			Layout:              l,
			Snapshotter:         runtime.DetectSnapshotter(l.Root()),
			RestrictOOMScoreAdj: !runtime.HasCapSysResource(),
			SandboxImage:        images.PauseRef(),
			CNIBinDir:           cniBin,
			CNIConfDir:          a.dirs.cniConf,
		}
		slog.Info("starting containerd", "snapshotter", cfg.Snapshotter, "restrictOOMScoreAdj", cfg.RestrictOOMScoreAdj, "cniBinDir", cniBin)
		c, _, err := runtime.StartContainerd(ctx, cfg, a.opts.ContainerdBinary)
		if err != nil {
			return err
		}
		a.containerd = c
		endpoint = c.Endpoint()
		importer = images.Importer{Address: l.Socket(), Snapshotter: cfg.Snapshotter}
	}
	cri, err := runtime.Dial(endpoint)
	if err != nil {
		a.stopRuntime()
		return err
	}
	a.cri = cri
	a.rt = cri
	v, err := cri.WaitReady(ctx, 30*time.Second)
	if err != nil {
		a.stopRuntime()
		return err
	}
	a.runtimeName, a.runtimeVer = v.RuntimeName, v.RuntimeVersion
	if a.ownRuntime {
		if _, err := images.EnsurePause(ctx, cri.Images, importer, pauseCacheDir(a.dirs.cache)); err != nil {
			a.stopRuntime()
			return err
		}
	}
	return nil
}

// pauseCacheDir is where a pause binary built with the Go toolchain (for a
// havre built without an embedded one) is kept: the user's cache, shared by
// every data directory, else the agent's own.
func pauseCacheDir(fallback string) string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "havre")
	}
	return fallback
}

func (a *Agent) stopRuntime() {
	if a.cri != nil {
		a.cri.Close()
	}
	if a.containerd != nil {
		a.containerd.Stop()
	}
}

// refreshFacts reads the machine's facts and addresses.
func (a *Agent) refreshFacts() {
	m := readMachineInfo()
	var ips []string
	if a.opts.NodeIP != "" {
		ips = []string{a.opts.NodeIP}
	} else if ip, err := internalIP(); err == nil {
		ips = []string{ip.String()}
	} else {
		slog.Warn("node has no internal IP", "err", err)
	}
	alloc := a.computeAllocatable(m)
	a.factsMu.Lock()
	a.machine = m
	a.hostIPs = ips
	a.allocatable = alloc
	a.factsMu.Unlock()
}

func (a *Agent) facts() (machineInfo, []string, corev1.ResourceList) {
	a.factsMu.RLock()
	defer a.factsMu.RUnlock()
	return a.machine, a.hostIPs, a.allocatable
}

// apiObjects reads ConfigMaps and Secrets from the API.
type apiObjects struct{ client kubernetes.Interface }

func (o apiObjects) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return o.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1GetOptions)
}

func (o apiObjects) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return o.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1GetOptions)
}

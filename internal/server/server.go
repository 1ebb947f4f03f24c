// Package server composes the `havre server` process: it prepares the data
// directory, certificates and credentials, opens the store, runs the API
// server and starts the in-process controllers as API clients.
//
// It holds no behaviour of its own beyond wiring and ordering.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/havre/havre/internal/aggregator"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/admission/podsecurity"
	"github.com/havre/havre/internal/agent"
	"github.com/havre/havre/internal/agent/streaming"
	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac"
	"github.com/havre/havre/internal/auth/review"
	"github.com/havre/havre/internal/controller"
	"github.com/havre/havre/internal/controller/nodeipam"
	"github.com/havre/havre/internal/pki"
	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/bolt"
	"github.com/havre/havre/internal/storage/encryption"
	"github.com/havre/havre/internal/version"
)

// Options configure `havre server`.
type Options struct {
	DataDir            string
	BindAddress        string
	HTTPSPort          int
	TLSSANs            []string
	CompactionInterval time.Duration
	ServiceCIDR        string
	NodePortRange      string
	Profiling          bool
	// DisableAgent: no node agent runs in this process.
	DisableAgent bool
	// NodeIPAM runs the controller giving nodes their pod CIDRs.
	NodeIPAM bool
	// Agent configures the in-process node agent (its node settings; the
	// server fills in the data dir, the API connection and the cluster's
	// ranges).
	Agent agent.Options
	// AdvertiseAddress is the address the kubernetes Service's endpoints
	// point at (default: the bind address when it is one, else the node's).
	AdvertiseAddress string
	// Controllers configure the in-process controllers (ClusterCIDR is
	// where nodes' pod CIDRs come from).
	Controllers controller.Options
	// AdmissionControlConfigFile is kube-apiserver's
	// --admission-control-config-file: an AdmissionConfiguration whose
	// PodSecurity entry configures Pod Security Admission (empty: Havre's
	// default, see podsecurity.DefaultConfiguration).
	AdmissionControlConfigFile string
	// Started is when the process started, for the readiness log line.
	Started time.Time
	// EncryptionProviderConfig is kube-apiserver's --encryption-provider-config:
	// an EncryptionConfiguration file. Empty: <data-dir>/server/encryption-config.yaml,
	// generated at first start (Secrets encrypted with secretbox).
	EncryptionProviderConfig string
}

// loadEncryption loads --encryption-provider-config, or the default
// configuration, written at first start.
func loadEncryption(ctx context.Context, o Options) (*encryption.Config, error) {
	path := o.EncryptionProviderConfig
	if path == "" {
		p, created, err := encryption.EnsureDefault(filepath.Join(o.DataDir, "server"))
		if err != nil {
			return nil, fmt.Errorf("writing the default encryption provider config: %w", err)
		}
		if created {
			slog.Info("encryption at rest: generated a key for Secrets", "config", p)
		}
		path = p
	}
	c, err := encryption.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	slog.Info("encryption at rest", "config", path)
	return c, nil
}

// encryptStore wraps the store in its encryption and first writes back, with
// the first provider, what was written in clear or under an older key or
// provider (after a key is put first: the rotation's re-encryption).
func encryptStore(ctx context.Context, backend storage.Store, c *encryption.Config) (*encryption.Store, error) {
	store := encryption.Wrap(backend, c)
	res, err := store.Rewrite(ctx, func(r encryption.RewriteResult) {
		if r.Rewritten > 0 {
			slog.Info("encryption at rest: re-encrypting", "scanned", r.Scanned, "rewritten", r.Rewritten)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("re-encrypting the store: %w", err)
	}
	if res.Failed > 0 {
		slog.Warn("encryption at rest: values that no provider of the configuration decrypts (a key is missing?)", "count", res.Failed)
	}
	if res.Rewritten > 0 {
		slog.Info("encryption at rest: re-encrypted", "scanned", res.Scanned, "rewritten", res.Rewritten)
	}
	return store, nil
}

// KubeconfigPath is where the admin kubeconfig is written.
func KubeconfigPath(dataDir string) string { return filepath.Join(dataDir, "admin.kubeconfig") }

// Run runs the server until ctx is done.
func Run(ctx context.Context, o Options) error {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w (use --data-dir to choose another)", err)
	}
	podSecurity, err := podsecurity.LoadConfiguration(o.AdmissionControlConfigFile)
	if err != nil {
		return err
	}
	bundle, err := pki.Ensure(o.DataDir, pki.Options{ExtraSANs: o.TLSSANs})
	if err != nil {
		return err
	}
	for _, note := range bundle.Notes {
		slog.Info("certificates", "note", note)
	}
	_, tokenFile, err := auth.EnsureServerTokens(o.DataDir)
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokenFile(tokenFile)
	if err != nil {
		return err
	}
	dbDir := filepath.Join(o.DataDir, "server", "db")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return err
	}
	encryptionConfig, err := loadEncryption(ctx, o)
	if err != nil {
		return err
	}
	backend, err := bolt.Open(filepath.Join(dbDir, "state.db"), bolt.Options{})
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer backend.Close()
	store, err := encryptStore(ctx, backend, encryptionConfig)
	if err != nil {
		return err
	}

	nodeCert, err := nodeClientCert(bundle)
	if err != nil {
		return err
	}
	resources := catalog.Resources()
	frontProxy, err := bundle.EnsureFrontProxy()
	if err != nil {
		return err
	}
	agg := aggregator.New(frontProxy, bundle.CAPEM, resources)
	authorizer, rbacIndex := newAuthorizer()
	addr := net.JoinHostPort(o.BindAddress, strconv.Itoa(o.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (is another server running? choose a port with --https-port)", addr, err)
	}
	admissionChain := admission.NewChain()
	escalation := &rbac.Escalation{Authorizer: authorizer, Index: rbacIndex}
	srv, err := apiserver.New(apiserver.Config{
		Store:          store,
		Resources:      resources,
		TLSConfig:      bundle.ServerTLSConfig(),
		Authenticator:  auth.Union{auth.X509{}, tokens},
		Authorizer:     authorizer,
		RBACEscalation: escalation,
		Admission:      admissionChain,
		PostStart: []func(context.Context, *rest.Config) error{startAdmission(admissionChain, authorizer, admissionPlugins(podSecurity)), startRBAC(rbacIndex),
			ensureDefaultStorageClass, ensureIngressClass, startSnapshotAPI, startGatewayAPI, agg.Start},
		Aggregator:         agg,
		Reviews:            (&review.Reviewer{Authorizer: authorizer, Rules: rbacIndex}).Handlers(),
		Listener:           ln,
		CAData:             bundle.CAPEM,
		Version:            version.Info(),
		CompactionInterval: o.CompactionInterval,
		ServiceCIDR:        o.ServiceCIDR,
		NodePortRange:      o.NodePortRange,
		// DefaultTolerationSeconds admission.
		DefaultNotReadyTolerationSeconds:    o.Controllers.DefaultNotReadyTolerationSeconds,
		DefaultUnreachableTolerationSeconds: o.Controllers.DefaultUnreachableTolerationSeconds,
		Profiling:                           o.Profiling,
		NodeClientCert:                      nodeCert,
	})
	if err != nil {
		return err
	}

	escalation.Roles = srv // a binding's role is read from the store
	agg.SetDiscoverySink(srv)
	agg.SetOpenAPISink(srv)

	host := o.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	kubeconfig := KubeconfigPath(o.DataDir)
	serverURL := "https://" + net.JoinHostPort(host, strconv.Itoa(o.HTTPSPort))
	if err := pki.WriteKubeconfig(kubeconfig, serverURL, bundle.CAPEM, bundle.AdminCertPEM, bundle.AdminKeyPEM); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-srv.Ready():
	}
	slog.Info("havre server is ready", "address", serverURL, "kubeconfig", kubeconfig,
		"startup", time.Since(o.Started).Round(time.Millisecond).String())
	fmt.Fprintf(os.Stderr, "\nKubeconfig written to %s\nTry: KUBECONFIG=%s kubectl get namespaces\n\n", kubeconfig, kubeconfig)

	copts := o.Controllers
	advertise, err := advertiseAddress(o)
	if err != nil {
		return err
	}
	copts.APIServerAddresses = []string{advertise}
	copts.APIServerPort = int32(o.HTTPSPort)
	copts.APIServiceDiscoveryCheck = agg.CheckDiscovery
	if o.NodeIPAM && copts.ClusterCIDR == "" {
		copts.ClusterCIDR = nodeipam.DefaultClusterCIDR
	}
	if !o.NodeIPAM {
		copts.ClusterCIDR = ""
	}
	if err := startControllers(ctx, srv, resources, copts); err != nil {
		return err
	}
	if o.DisableAgent {
		return <-errc
	}
	return runAgent(ctx, cancel, o, srv, errc)
}

// runAgent runs the node agent of the server's own node beside the API
// server. A failure to start the agent stops the server; on shutdown it
// waits for both.
func runAgent(ctx context.Context, cancel context.CancelFunc, o Options, srv *apiserver.Server, errc <-chan error) error {
	if o.Agent.NodeName == "" {
		name, err := agent.DefaultNodeName()
		if err != nil {
			return err
		}
		o.Agent.NodeName = name
	}
	cfg, err := configFor(srv, nodeIdentity(o.Agent.NodeName))
	if err != nil {
		return err
	}
	agentc := make(chan error, 1)
	go func() {
		ao := o.Agent
		ao.DataDir = o.DataDir
		ao.RESTConfig = cfg
		ao.NodeLabels = map[string]string{"node-role.kubernetes.io/control-plane": "true"}
		ao.ClusterCIDR = o.Controllers.ClusterCIDR
		ao.ServiceCIDR = o.ServiceCIDR
		agentc <- agent.Run(ctx, ao)
	}()
	select {
	case err := <-errc:
		cancel()
		<-agentc
		return err
	case err := <-agentc:
		if err != nil && ctx.Err() == nil {
			cancel()
			<-errc
			return fmt.Errorf("node agent: %w (run with --disable-agent for an API server alone)", err)
		}
		return <-errc
	}
}

// startControllers builds every registered controller on one shared
// informer factory, then starts the factory.
func startControllers(ctx context.Context, srv *apiserver.Server, resources []*registry.Resource, opts controller.Options) error {
	cfg, err := configFor(srv, asControllerManager)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	metaClient, err := metadata.NewForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	cc := &controller.Context{
		Config: cfg, Client: client, Dynamic: dyn, Metadata: metaClient,
		Informers: informers.NewSharedInformerFactory(client, 0),
		Mapper:    mapper, Options: opts,
	}
	for _, r := range resources {
		scope := meta.RESTScopeRoot
		if r.Namespaced {
			scope = meta.RESTScopeNamespace
			// What the namespace controller empties: not the reviews,
			// which are never stored.
			if r.HasVerb("list") {
				cc.Namespaced = append(cc.Namespaced, r.GroupVersionResource)
			}
		}
		mapper.AddSpecific(r.GroupVersionKind(), r.GroupVersionResource, r.GroupVersion().WithResource(r.Singular), scope)
		if r.HasVerb("list") && r.HasVerb("watch") && r.HasVerb("delete") {
			cc.Collectable = append(cc.Collectable, r.GroupVersionResource)
		}
	}
	if err := checkSelection(opts.Controllers); err != nil {
		return err
	}
	var ids []identity
	for _, c := range controllers {
		if !enabled(c.name, opts.Controllers) {
			slog.Info("controller disabled", "controller", c.name)
			continue
		}
		ids = append(ids, c.as)
		own, err := contextFor(srv, cc, c.as)
		if err != nil {
			return err
		}
		if err := c.start(ctx, own); err != nil {
			return fmt.Errorf("starting the %s controller: %w", c.name, err)
		}
	}
	cc.Informers.Start(ctx.Done())
	admin, err := kubernetes.NewForConfig(srv.LoopbackConfig())
	if err != nil {
		return err
	}
	go ensureServiceAccounts(ctx, admin, ids)
	return nil
}

// advertiseAddress is the address the kubernetes Service's endpoints point
// at: --advertise-address, else --bind-address when it names a routable
// address, else the node's address.
func advertiseAddress(o Options) (string, error) {
	if o.AdvertiseAddress != "" {
		if ip := net.ParseIP(o.AdvertiseAddress); ip == nil || ip.To4() == nil {
			return "", fmt.Errorf("--advertise-address %q: want an IPv4 address", o.AdvertiseAddress)
		}
		return o.AdvertiseAddress, nil
	}
	if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		return ip.String(), nil
	}
	if o.Agent.NodeIP != "" {
		return o.Agent.NodeIP, nil
	}
	ip, err := agent.DefaultNodeIP()
	if err != nil {
		return "", fmt.Errorf("finding the address to advertise: %w (pass --advertise-address)", err)
	}
	return ip.String(), nil
}

// nodeClientCert is the certificate the API server presents to node agents
// (issued at every start, valid for a year).
func nodeClientCert(bundle *pki.Bundle) (*tls.Certificate, error) {
	certPEM, keyPEM, err := bundle.IssueClientCert(streaming.APIServerUser, nil, 365*24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("the API server's node client certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

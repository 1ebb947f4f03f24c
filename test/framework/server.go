package framework

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment variables understood by StartServer.
const (
	// EnvReadyTimeout overrides how long StartServer waits for /readyz
	// (a Go duration, default 60s).
	EnvReadyTimeout = "HAVRE_E2E_READY_TIMEOUT"
	// EnvLogLines sets how many trailing lines of the server log are
	// printed when a test fails (default 300; 0 prints all of it).
	EnvLogLines = "HAVRE_E2E_LOG_LINES"
)

const (
	defaultReadyTimeout = 60 * time.Second
	stopTimeout         = 30 * time.Second
	kubectlTimeout      = 2 * time.Minute
	// KubeconfigName is the file the server writes into its data dir.
	KubeconfigName = "admin.kubeconfig"
)

// Option tunes StartServer.
type Option func(*serverOptions)

type serverOptions struct {
	// netns, host, nodeName: set by StartCluster for its server.
	netns, host, nodeName string
	args                  []string
	env                   []string
	readyTimeout          time.Duration
	binary                string
	agent                 bool
	// clusterArgs: WithClusterArgs.
	clusterArgs []func(*Cluster) []string
}

// WithArgs appends arguments to `havre server`.
func WithArgs(args ...string) Option {
	return func(o *serverOptions) { o.args = append(o.args, args...) }
}

// WithClusterArgs appends arguments to the `havre server` of a cluster
// (StartCluster only), computed once the cluster's network is up and
// before the server starts: e.g. the URL of something the test serves on
// the underlay at c.TestAddr().
func WithClusterArgs(f func(c *Cluster) []string) Option {
	return func(o *serverOptions) { o.clusterArgs = append(o.clusterArgs, f) }
}

// WithAgent runs the server with its node agent (without --disable-agent):
// it needs root, containerd, runc and the CNI plugins. When the test ends,
// after the server stopped, `havre agent reset` removes the node's pods.
func WithAgent() Option {
	return func(o *serverOptions) { o.agent = true }
}

// WithEnv adds KEY=VALUE pairs to the server's environment.
func WithEnv(kv ...string) Option {
	return func(o *serverOptions) { o.env = append(o.env, kv...) }
}

// WithReadyTimeout sets how long to wait for /readyz to answer 200.
func WithReadyTimeout(d time.Duration) Option {
	return func(o *serverOptions) { o.readyTimeout = d }
}

// WithBinary runs the given havre binary instead of the one built from the
// work tree.
func WithBinary(path string) Option {
	return func(o *serverOptions) { o.binary = path }
}

// Server is a running `havre server` process on 127.0.0.1 with its own data
// directory. Its methods are meant to be called from the test goroutine,
// except the client accessors and Kubectl, which are safe anywhere.
type Server struct {
	t    testing.TB
	opts serverOptions

	binary          string
	dataDir         string
	logPath         string
	kubectlCacheDir string
	port            int
	// streamingPort is the node agent's streaming API port (with WithAgent).
	streamingPort int
	// ingressHTTPPort and ingressHTTPSPort are the node's ingress proxy's
	// ports (with WithAgent).
	ingressHTTPPort, ingressHTTPSPort int
	// podNet is the second octet of the server's cluster CIDR 10.X.0.0/17
	// and service CIDR 10.X.128.0/17 (with WithAgent, outside a cluster).
	podNet int
	// netns, host: a server of a Cluster runs in the network namespace of
	// its node and answers on host (not 127.0.0.1).
	netns, host string
	// kubeconfig is the admin kubeconfig the tests use: the server's own,
	// or a copy pointing at host.
	kubeconfig string

	mu        sync.Mutex
	proc      *process
	starts    int
	startedAt time.Time
	readyAt   time.Time

	cfgMu     sync.Mutex
	config    *rest.Config // loaded from the kubeconfig after the first start
	clientset kubernetes.Interface
	dyn       dynamic.Interface
}

// process is one run of the binary.
type process struct {
	cmd   *exec.Cmd
	done  chan struct{} // closed when Wait returns
	state *os.ProcessState
	err   error
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// StartServer starts `havre server` on a free loopback port with a fresh data
// directory and waits until /readyz answers 200. The server is stopped with
// SIGTERM when the test ends, and its log is printed if the test failed.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := serverOptions{readyTimeout: defaultReadyTimeout}
	if v := os.Getenv(EnvReadyTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", EnvReadyTimeout, v, err)
		}
		o.readyTimeout = d
	}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.clusterArgs) > 0 && o.netns == "" {
		t.Fatal("WithClusterArgs is an option of StartCluster")
	}
	bin := o.binary
	if bin == "" {
		bin = Havre(t)
	}
	work := t.TempDir()
	s := &Server{
		t:               t,
		opts:            o,
		netns:           o.netns,
		host:            o.host,
		binary:          bin,
		dataDir:         filepath.Join(work, "data"),
		logPath:         filepath.Join(work, "havre.log"),
		kubectlCacheDir: filepath.Join(work, "kubectl-cache"),
	}
	for _, d := range []string{s.dataDir, s.kubectlCacheDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Cleanups run last-in first-out: stop the server first, then print
	// its log (including the shutdown) if the test failed.
	t.Cleanup(s.dumpLogOnFailure)
	t.Cleanup(s.checkComponentDenials)
	t.Cleanup(s.cleanup)

	// A port picked by listening on :0 may be taken again before the
	// server binds it; retry a few times on "address already in use".
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		s.port = port
		if o.agent && !slices.Contains(o.args, "--streaming-port") {
			if s.streamingPort, err = FreePort(); err != nil {
				t.Fatal(err)
			}
		}
		if o.agent && o.netns != "" && !slices.Contains(o.args, "--ingress-http-port") && !slices.Contains(o.args, "--disable-ingress") {
			// A node of a cluster has a network namespace of its own:
			// its proxy listens on the ports every node of the cluster
			// uses.
			s.ingressHTTPPort, s.ingressHTTPSPort = ClusterIngressHTTPPort, ClusterIngressHTTPSPort
		} else if o.agent && !slices.Contains(o.args, "--ingress-http-port") && !slices.Contains(o.args, "--disable-ingress") {
			if s.ingressHTTPPort, err = FreePort(); err != nil {
				t.Fatal(err)
			}
			if s.ingressHTTPSPort, err = FreePort(); err != nil {
				t.Fatal(err)
			}
		}
		if o.agent && o.netns == "" && s.podNet == 0 && !slices.Contains(o.args, "--cluster-cidr") {
			s.podNet = podNetwork()
		}
		err = s.start()
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(s.Logs(), "address already in use") {
			t.Logf("port %d was taken, retrying: %v", port, err)
			continue
		}
		t.Fatalf("starting havre server: %v", err)
	}
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Args returns the command line the server is started with (without the
// binary).
func (s *Server) Args() []string {
	args := []string{"server",
		"--data-dir", s.dataDir,
		"--https-port", strconv.Itoa(s.port),
		"--bind-address", s.bindHost(),
	}
	if s.netns != "" {
		args = append(args, "--tls-san", s.host, "--node-ip", s.host, "--node-name", s.opts.nodeName)
	}
	if !s.opts.agent {
		args = append(args, "--disable-agent")
	}
	if s.streamingPort != 0 {
		args = append(args, "--streaming-port", strconv.Itoa(s.streamingPort))
	}
	if s.ingressHTTPPort != 0 {
		args = append(args, "--ingress-http-port", strconv.Itoa(s.ingressHTTPPort), "--ingress-https-port", strconv.Itoa(s.ingressHTTPSPort))
	}
	if !slices.Contains(s.opts.args, "--acme-directory") {
		// Tests reach no address outside this machine: no ACME CA unless
		// a test runs one (Pebble) and names it.
		args = append(args, "--acme-directory", "off")
	}
	if s.podNet != 0 {
		// Servers of test processes running at once must not share a pod
		// network: each has a cluster CIDR and a bridge of its own.
		// Nor an overlay: the kernel has one VXLAN port per namespace, and
		// a single node needs no peers.
		args = append(args, "--cluster-cidr", fmt.Sprintf("10.%d.0.0/17", s.podNet), "--service-cidr", fmt.Sprintf("10.%d.128.0/17", s.podNet),
			"--cni-bridge", fmt.Sprintf("havre%d", s.podNet), "--pod-network-backend", "direct")
	}
	return append(args, s.opts.args...)
}

// start runs the binary and waits for readiness. On error the process is
// killed and reaped.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		return errors.New("server is already running")
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.starts++
	fmt.Fprintf(logFile, "===== framework: start #%d at %s: %s %s\n", s.starts,
		time.Now().Format(time.RFC3339Nano), s.binary, strings.Join(s.Args(), " "))

	cmd := s.command(s.Args()...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), s.opts.env...)
	configureChild(cmd)
	startedAt := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		logFile.Close()
		close(p.done)
	}()
	s.proc = p
	s.startedAt = startedAt

	readyAt, err := waitReady(p, s.URL("/readyz"), s.opts.readyTimeout)
	if err != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		return err
	}
	s.readyAt = readyAt
	return s.loadConfig()
}

// readyPollInterval is how often /readyz is polled while a server starts:
// short, so that the measured time to readiness is close to the real one
// (a refused connection costs next to nothing).
const readyPollInterval = 5 * time.Millisecond

// waitReady polls /readyz (without credentials, not verifying the serving
// certificate, which is signed by the server's own CA) until it answers 200
// and returns when it did.
func waitReady(p *process, url string, timeout time.Duration) (time.Time, error) {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // health probe only
			DisableKeepAlives: true,
		},
	}
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	last := "no answer"
	for {
		if p.exited() {
			return time.Time{}, fmt.Errorf("server exited before it was ready (%v); see the log", p.err)
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("GET %s: not ready within %v (last answer: %s)", url, timeout, last)
		}
		select {
		case <-ticker.C:
		case <-p.done:
		}
	}
}

// loadConfig reads the admin kubeconfig. After a restart the credentials
// must be the ones the server had before (the data dir keeps them).
func (s *Server) loadConfig() error {
	path := filepath.Join(s.dataDir, KubeconfigName)
	var cfg *rest.Config
	err := WaitFor(5*time.Second, func() (bool, error) {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return false, err
		}
		cfg = c
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("server is ready but %s is not a usable kubeconfig: %w", path, err)
	}
	if s.netns != "" {
		// The server wrote its loopback address; the test reaches it on
		// its node's.
		cfg.Host = s.URL("")
		kc, err := clientcmd.LoadFromFile(path)
		if err != nil {
			return err
		}
		for _, c := range kc.Clusters {
			c.Server = s.URL("")
		}
		s.kubeconfig = filepath.Join(filepath.Dir(s.logPath), "admin.kubeconfig")
		if err := clientcmd.WriteToFile(*kc, s.kubeconfig); err != nil {
			return err
		}
	}
	// Tests issue many requests; client-go's default 5 QPS would throttle
	// them. A negative QPS disables client-side rate limiting.
	cfg.QPS = -1
	cfg.Burst = 0
	cfg.UserAgent = "havre-e2e"

	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if s.config != nil {
		if !bytes.Equal(s.config.CAData, cfg.CAData) ||
			!bytes.Equal(s.config.CertData, cfg.CertData) ||
			s.config.BearerToken != cfg.BearerToken ||
			s.config.Host != cfg.Host {
			return errors.New("the admin kubeconfig changed across a restart on the same data dir (credentials or CA were not kept)")
		}
		return nil
	}
	s.config = cfg
	return nil
}

// cleanup stops the server at the end of the test.
func (s *Server) cleanup() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil && !p.exited() {
		s.Stop()
	}
	if s.opts.agent {
		if out, err := s.HavreInNode("agent", "reset", "--data-dir", s.dataDir); err != nil {
			s.t.Errorf("havre agent reset: %v\n%s", err, out)
		}
		if s.podNet != 0 {
			// The bridge outlives the pods; it is the test's to remove.
			_ = exec.Command("ip", "link", "delete", fmt.Sprintf("havre%d", s.podNet)).Run()
		}
	}
}

// Havre runs the havre binary with args (not as a server) and returns its
// combined output.
func (s *Server) Havre(args ...string) (string, error) {
	return runCommand("", s.binary, args...)
}

// HavreInNode runs the havre binary with args in the server's node: in
// its network namespace when it has one (for `havre agent reset`, which
// removes the node's network).
func (s *Server) HavreInNode(args ...string) (string, error) {
	return runCommand(s.netns, s.binary, args...)
}

// runCommand runs name with args, in the network namespace netns unless it
// is "", for at most two minutes, and returns its combined output.
func runCommand(netns, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := inNode(ctx, netns, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return string(out), err
}

// command is the server binary run with args, in the server's network
// namespace when it has one.
func (s *Server) command(args ...string) *exec.Cmd {
	return inNode(context.Background(), s.netns, s.binary, args...)
}

// bindHost is the address the server listens on.
func (s *Server) bindHost() string {
	if s.netns != "" {
		return "0.0.0.0"
	}
	return "127.0.0.1"
}

// Host is the address the server answers on.
func (s *Server) Host() string {
	if s.host != "" {
		return s.host
	}
	return "127.0.0.1"
}

// MustHavre is Havre failing t on error.
func (s *Server) MustHavre(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Havre(args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// ComponentDenialLog is what the server logs when RBAC refuses one of its
// own in-process components (a controller, the scheduler, the embedded
// agent) a request.
const ComponentDenialLog = "an in-process component was forbidden"

// ComponentDenials returns the server's log lines where RBAC refused one
// of its own components a request.
func (s *Server) ComponentDenials() []string {
	var out []string
	for line := range strings.Lines(s.Logs()) {
		if strings.Contains(line, ComponentDenialLog) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// checkComponentDenials fails the test when the server refused one of its
// own components a request: their roles must grant all they do.
func (s *Server) checkComponentDenials() {
	if d := s.ComponentDenials(); len(d) > 0 {
		s.t.Errorf("havre server: RBAC refused its own components %d request(s):\n%s", len(d), strings.Join(d, "\n"))
	}
}

func (s *Server) dumpLogOnFailure() {
	if !s.t.Failed() {
		return
	}
	lines := 300
	if v := os.Getenv(EnvLogLines); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			lines = n
		}
	}
	s.t.Logf("havre server log (%s, last %d lines; %s=0 for all):\n%s", s.logPath, lines, EnvLogLines, tail(s.Logs(), lines))
}

func tail(text string, n int) string {
	if n <= 0 {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // text ended with a newline
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// signalAndWait sends sig and waits up to timeout for the process to exit.
func (s *Server) signalAndWait(sig os.Signal, timeout time.Duration) (*process, error) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil, errors.New("server was never started")
	}
	if p.exited() {
		return p, fmt.Errorf("server had already exited: %v", p.state)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return p, err
	}
	select {
	case <-p.done:
		return p, nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return p, fmt.Errorf("server did not exit within %v of %v; killed it", timeout, sig)
	}
}

// Stop sends SIGTERM and waits for the server to exit. A clean shutdown
// exits 0; anything else fails the test. It returns the exit code (-1 when
// the process died of a signal).
func (s *Server) Stop() int {
	s.t.Helper()
	p, err := s.signalAndWait(syscall.SIGTERM, stopTimeout)
	if err != nil {
		s.t.Errorf("stopping havre server: %v", err)
	}
	if p == nil || p.state == nil {
		return -1
	}
	if code := p.state.ExitCode(); code != 0 || err != nil {
		if err == nil {
			s.t.Errorf("havre server did not shut down cleanly on SIGTERM: %v", p.state)
		}
		return code
	}
	return 0
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	s.t.Helper()
	if _, err := s.signalAndWait(syscall.SIGKILL, stopTimeout); err != nil {
		s.t.Fatalf("killing havre server: %v", err)
	}
}

// Restart stops the server if it is running (SIGTERM) and starts it again
// on the same port with the same data dir, waiting for readiness.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.proc != nil && !s.proc.exited()
	s.mu.Unlock()
	if running {
		s.Stop()
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting havre server: %v", err)
	}
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !s.proc.exited()
}

// PID returns the process id of the current run.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.cmd.Process.Pid
}

// StartedAt returns when the current run was exec'd.
func (s *Server) StartedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startedAt
}

// ReadyAt returns when /readyz first answered 200 in the current run.
func (s *Server) ReadyAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyAt
}

// Port returns the HTTPS port.
func (s *Server) Port() int { return s.port }

// IngressHTTPPort and IngressHTTPSPort return the ports of the node's
// ingress proxy (with WithAgent; 0 when the test chose them in its args).
func (s *Server) IngressHTTPPort() int  { return s.ingressHTTPPort }
func (s *Server) IngressHTTPSPort() int { return s.ingressHTTPSPort }

// DataDir returns the server's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// LogPath returns the file the server's stdout and stderr go to.
func (s *Server) LogPath() string { return s.logPath }

// Logs returns everything the server has logged so far, across restarts.
func (s *Server) Logs() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	return string(data)
}

// URL returns https://HOST:PORT followed by path (HOST 127.0.0.1, or the
// node's address for a server of a Cluster).
func (s *Server) URL(path string) string {
	return "https://" + net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) + path
}

// Kubeconfig returns the path of the admin kubeconfig: the one the server
// wrote, or for a server of a Cluster a copy that reaches it from the
// test.
func (s *Server) Kubeconfig() string {
	if s.kubeconfig != "" {
		return s.kubeconfig
	}
	return filepath.Join(s.dataDir, KubeconfigName)
}

// RESTConfig returns a copy of the admin client configuration, with
// client-side rate limiting disabled.
func (s *Server) RESTConfig() *rest.Config {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if s.config == nil {
		s.t.Fatal("server has no client configuration (never started?)")
	}
	return rest.CopyConfig(s.config)
}

// Clientset returns a typed client for the admin user. Like every
// client-go typed client it sends protobuf bodies.
func (s *Server) Clientset() kubernetes.Interface {
	cfg := s.RESTConfig()
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if s.clientset == nil {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			s.t.Fatalf("creating clientset: %v", err)
		}
		s.clientset = cs
	}
	return s.clientset
}

// Dynamic returns a dynamic (unstructured, JSON) client for the admin user.
func (s *Server) Dynamic() dynamic.Interface {
	cfg := s.RESTConfig()
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if s.dyn == nil {
		d, err := dynamic.NewForConfig(cfg)
		if err != nil {
			s.t.Fatalf("creating dynamic client: %v", err)
		}
		s.dyn = d
	}
	return s.dyn
}

// HTTPClient returns an http.Client that trusts the server's CA and
// authenticates as the admin user, for raw requests.
func (s *Server) HTTPClient() *http.Client {
	c, err := rest.HTTPClientFor(s.RESTConfig())
	if err != nil {
		s.t.Fatalf("creating HTTP client: %v", err)
	}
	return c
}

// AnonymousHTTPClient returns an http.Client that trusts the server's CA but
// presents no credentials.
func (s *Server) AnonymousHTTPClient() *http.Client {
	anon := rest.AnonymousClientConfig(s.RESTConfig())
	c, err := rest.HTTPClientFor(anon)
	if err != nil {
		s.t.Fatalf("creating HTTP client: %v", err)
	}
	return c
}

// KubectlCommand returns an unstarted kubectl command against this server,
// for long-running invocations such as `get -w`. The caller owns its
// lifetime (cancel ctx to kill it).
func (s *Server) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	bin := Kubectl(s.t)
	full := append([]string{"--kubeconfig", s.Kubeconfig(), "--cache-dir", s.kubectlCacheDir}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig(), "HOME="+s.kubectlCacheDir)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Kubectl runs kubectl with this server's admin kubeconfig and a cache
// directory of its own, and returns its output. err is non-nil when kubectl
// exits non-zero or runs longer than two minutes.
func (s *Server) Kubectl(args ...string) (stdout, stderr string, err error) {
	return s.KubectlStdin("", args...)
}

// KubectlStdin is Kubectl with the given standard input (for `-f -`).
func (s *Server) KubectlStdin(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := s.KubectlCommand(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	cmd.Stdin = strings.NewReader(stdin)
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), err
}

// MustKubectl runs kubectl and fails t if it exits non-zero; it returns
// standard output. t is the calling (sub)test, which may differ from the test
// that started the server.
func (s *Server) MustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	return s.MustKubectlStdin(t, "", args...)
}

// MustKubectlStdin is MustKubectl with standard input.
func (s *Server) MustKubectlStdin(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := s.KubectlStdin(stdin, args...)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	return out
}

// podNetwork picks the second octet of a test server's cluster CIDR,
// 10.X.0.0/16, among 100-249, unused by the bridges and addresses of this
// host.
func podNetwork() int {
	for range 50 {
		n := 100 + rand.IntN(150)
		if podNetworkFree(n) {
			return n
		}
	}
	return 100 + rand.IntN(150)
}

// podNetworkFree reports whether no bridge havreN exists and no interface
// has an address in 10.N.0.0/16.
func podNetworkFree(n int) bool {
	if _, err := net.InterfaceByName(fmt.Sprintf("havre%d", n)); err == nil {
		return false
	}
	_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", n))
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && subnet.Contains(ip.IP) {
			return false
		}
	}
	return true
}

// PodNetwork gives a test that runs its own agent process a cluster CIDR and
// a bridge name no other test server on this host uses, and removes the
// bridge when the test ends (after the test's own cleanups, which should
// stop the agent first).
func PodNetwork(t testing.TB) (clusterCIDR, bridge string) {
	n := podNetwork()
	bridge = fmt.Sprintf("havre%d", n)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	return fmt.Sprintf("10.%d.0.0/16", n), bridge
}

// ClusterCIDR is the range the server gives nodes' pod CIDRs from.
func (s *Server) ClusterCIDR() string {
	if s.podNet != 0 {
		return fmt.Sprintf("10.%d.0.0/17", s.podNet)
	}
	for i, a := range s.opts.args {
		if a == "--cluster-cidr" && i+1 < len(s.opts.args) {
			return s.opts.args[i+1]
		}
	}
	return "10.42.0.0/16"
}

// WithoutWorkloadControllers runs the server without the controllers that
// act on workloads (the scheduler; Deployments, ReplicaSets, StatefulSets,
// DaemonSets, Jobs, CronJobs) and on nodes' health, for tests of the API
// itself that write those objects' status (pods' and nodes' included) or
// build their owner chains by hand.
//
// more names further controllers to turn off, such as the endpoint
// controllers for a test that writes a selected Service's Endpoints itself.
func WithoutWorkloadControllers(more ...string) Option {
	list := "*,-scheduler,-deployment,-replicaset,-statefulset,-daemonset,-job,-cronjob,-nodelifecycle"
	for _, name := range more {
		list += ",-" + name
	}
	return WithArgs("--controllers", list)
}

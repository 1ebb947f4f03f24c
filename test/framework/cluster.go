package framework

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/network/netnstest"
	"github.com/havre/havre/internal/pki"
)

// A Cluster is a Havre cluster whose nodes are network namespaces of this
// machine, as separate hosts would be: node n0 runs `havre server` with its
// agent, nodes n1… run `havre agent`, each with its own data dir and
// containerd. The nodes' eth0 are joined by a bridge in an underlay
// namespace of their own that has no uplink; the test process reaches the
// underlay (the API server, node ports) through one veth, and the nodes
// reach nothing else. Everything is removed when the test ends.
//
// Addresses: underlay 100.64.X.0/24 — the test process .254, the underlay
// itself .253 (where a test may serve what stands for the outside world,
// e.g. an upstream DNS server: every node's /etc/resolv.conf names it),
// node ni .(10+i). The nodes' default route leads into the underlay,
// which forwards nothing. Pods and Services use Havre's defaults: each cluster
// has namespaces of its own, so clusters of tests running at once do not
// meet.
type Cluster struct {
	t        testing.TB
	id       int
	Underlay string
	Server   *Server
	Nodes    []*Node
	// namespaces are the network namespaces made, removed last.
	namespaces []string
	resolvConf string
}

// Node is one node of a Cluster.
type Node struct {
	c       *Cluster
	Name    string
	NetNS   string
	IP      string
	dataDir string
	logPath string

	mu   sync.Mutex
	proc *process
}

// ClusterIngressHTTPPort and ClusterIngressHTTPSPort are the ports of the
// ingress proxy of every node of a Cluster (each node has a network
// namespace of its own), unless the test gives the server other ones.
const (
	ClusterIngressHTTPPort  = 80
	ClusterIngressHTTPSPort = 443
)

// clusterIDs are the X of the clusters of this test process.
var (
	clusterIDsMu sync.Mutex
	clusterIDs   = map[int]bool{}
)

// RequireRoot skips the test unless it runs as root (namespaces, bridges,
// containerd).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and the node agent's containerd")
	}
}

// StartCluster starts a cluster of n nodes (n ≥ 1; n0 is the server's)
// and waits until every node is Ready. opts tune the server.
func StartCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	RequireRoot(t)
	if n < 1 {
		t.Fatal("a cluster has at least one node")
	}
	c := &Cluster{t: t, id: freeClusterID()}
	c.Underlay = fmt.Sprintf("hv%d-u", c.id)
	c.resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(c.resolvConf, []byte("nameserver "+c.OutsideAddr()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.removeNetwork)
	if err := c.setUpUnderlay(); err != nil {
		t.Fatalf("setting up the cluster's underlay: %v", err)
	}
	for i := range n {
		node, err := c.addNode(i)
		if err != nil {
			t.Fatalf("setting up node n%d: %v", i, err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	var given serverOptions
	for _, opt := range opts {
		opt(&given)
	}
	for _, f := range given.clusterArgs {
		opts = append(opts, WithArgs(f(c)...))
	}
	server := c.Nodes[0]
	opts = append([]Option{WithAgent(), func(o *serverOptions) {
		o.netns, o.host, o.nodeName = server.NetNS, server.IP, server.Name
	}, WithArgs("--resolv-conf", c.resolvConf)}, opts...)
	c.Server = StartServer(t, opts...)
	server.dataDir = c.Server.DataDir()
	for _, node := range c.Nodes[1:] {
		node.dataDir = filepath.Join(t.TempDir(), "data")
		node.logPath = filepath.Join(filepath.Dir(c.Server.LogPath()), node.Name+".log")
		t.Cleanup(node.dumpLogOnFailure)
		t.Cleanup(node.cleanup)
		if err := node.start(); err != nil {
			t.Fatalf("starting the agent of %s: %v", node.Name, err)
		}
	}
	c.WaitNodesReady(t, 2*time.Minute)
	return c
}

// freeClusterID picks X in 100-249 for a cluster: no namespace or link of
// that number exists and no interface has an address in 100.64.X.0/24.
func freeClusterID() int {
	clusterIDsMu.Lock()
	defer clusterIDsMu.Unlock()
	for range 200 {
		x := 100 + rand.IntN(150)
		if clusterIDs[x] {
			continue
		}
		if _, err := os.Stat("/run/netns/" + fmt.Sprintf("hv%d-u", x)); err == nil {
			continue
		}
		if _, err := net.InterfaceByName(fmt.Sprintf("hv%dr", x)); err == nil {
			continue
		}
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("100.64.%d.0/24", x))
		used := false
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ip, ok := a.(*net.IPNet); ok && subnet.Contains(ip.IP) {
					used = true
				}
			}
		}
		if !used {
			clusterIDs[x] = true
			return x
		}
	}
	panic("no free cluster id in 100-249")
}

// ip runs the ip command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *Cluster) addr(host int) string { return fmt.Sprintf("100.64.%d.%d", c.id, host) }

// TestAddr is the test process's address on the underlay.
func (c *Cluster) TestAddr() string { return c.addr(254) }

// OutsideAddr is the underlay namespace's own address: what stands for
// the world outside the cluster (DialOutside, ListenOutside).
func (c *Cluster) OutsideAddr() string { return c.addr(253) }

func (c *Cluster) setUpUnderlay() error {
	u := c.Underlay
	root := fmt.Sprintf("hv%dr", c.id)
	if err := c.addNetNS(u); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", u, "link", "add", "br0", "type", "bridge"},
		{"-n", u, "addr", "add", c.OutsideAddr() + "/24", "dev", "br0"},
		{"-n", u, "link", "set", "br0", "up"},
		{"link", "add", root, "type", "veth", "peer", "name", "test", "netns", u},
		{"addr", "add", c.TestAddr() + "/24", "dev", root},
		{"link", "set", root, "up"},
		{"-n", u, "link", "set", "test", "master", "br0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) addNode(i int) (*Node, error) {
	n := &Node{c: c, Name: fmt.Sprintf("n%d", i), NetNS: fmt.Sprintf("hv%d-n%d", c.id, i), IP: c.addr(10 + i)}
	if err := c.addNetNS(n.NetNS); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"-n", c.Underlay, "link", "add", n.Name, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
		{"-n", c.Underlay, "link", "set", n.Name, "master", "br0", "up"},
		{"-n", n.NetNS, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"-n", n.NetNS, "link", "set", "eth0", "up"},
		// A default route, as every host has (a connection to a Service
		// address is routed before it is NATed): into the underlay, which
		// forwards nothing.
		{"-n", n.NetNS, "route", "add", "default", "via", c.OutsideAddr()},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ResolvConf is the resolver configuration the cluster's nodes are given
// (--resolv-conf): the outside address, so that they never reach the host's
// resolvers.
func (c *Cluster) ResolvConf() string { return c.resolvConf }

// removeNetwork deletes the cluster's namespaces and links (the agents
// and the server were stopped and reset by their own cleanups, which run
// first).
func (c *Cluster) removeNetwork() {
	for _, name := range c.namespaces {
		_ = ip("netns", "delete", name)
	}
	// Deleting the underlay took the root veth's peer, and so the veth.
	_ = ip("link", "delete", fmt.Sprintf("hv%dr", c.id))
	clusterIDsMu.Lock()
	delete(clusterIDs, c.id)
	clusterIDsMu.Unlock()
}

// addNetNS creates a network namespace the cluster removes at the end.
func (c *Cluster) addNetNS(name string) error {
	if err := ip("netns", "add", name); err != nil {
		return err
	}
	c.namespaces = append(c.namespaces, name)
	return ip("-n", name, "link", "set", "lo", "up")
}

// WaitNodesReady waits until every node of the cluster is Ready.
func (c *Cluster) WaitNodesReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range c.Nodes {
			node, err := c.Server.Clientset().CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ready := false
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if !ready {
				return false, nil
			}
		}
		return true, nil
	}, "every node of the cluster Ready")
}

// ImportImage imports an image archive into every node's runtime.
func (c *Cluster) ImportImage(t testing.TB, archive string) {
	t.Helper()
	for _, n := range c.Nodes {
		out, err := runCommand("", c.Server.binary, "image", "import", "--data-dir", n.dataDir, archive)
		if err != nil {
			t.Fatalf("importing %s on %s: %v\n%s", archive, n.Name, err, out)
		}
	}
}

// Node returns the node of that name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s in the cluster", name)
	return nil
}

func (n *Node) args() []string {
	s := n.c.Server
	return []string{"agent",
		"--server", s.URL(""),
		"--token-file", filepath.Join(s.DataDir(), auth.ServerDirName, auth.JoinTokenFile),
		"--ca-file", filepath.Join(s.DataDir(), pki.DirName, pki.CACertFile),
		"--data-dir", n.dataDir,
		"--node-name", n.Name,
		"--node-ip", n.IP,
		"--resolv-conf", n.c.resolvConf,
		"--ingress-http-port", strconv.Itoa(ClusterIngressHTTPPort),
		"--ingress-https-port", strconv.Itoa(ClusterIngressHTTPSPort),
	}
}

// IngressHTTPPort and IngressHTTPSPort are the ports of the node's ingress
// proxy (n0's: the server's, which a test may have chosen in its args).
func (n *Node) IngressHTTPPort() int {
	if n == n.c.Nodes[0] {
		return n.c.Server.IngressHTTPPort()
	}
	return ClusterIngressHTTPPort
}

func (n *Node) IngressHTTPSPort() int {
	if n == n.c.Nodes[0] {
		return n.c.Server.IngressHTTPSPort()
	}
	return ClusterIngressHTTPSPort
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := inNode(context.Background(), n.NetNS, n.c.Server.binary, n.args()...)
	fmt.Fprintf(logFile, "===== framework: start at %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	configureChild(cmd)
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
	n.proc = p
	return nil
}

// Stop sends the node's agent SIGTERM and waits for it (the server's node:
// the server).
func (n *Node) Stop() {
	if n.proc == nil {
		n.c.Server.Stop()
		return
	}
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		n.c.t.Errorf("the agent of %s did not stop within %v of SIGTERM", n.Name, stopTimeout)
	}
}

// Restart stops the node's agent and starts it again.
func (n *Node) Restart() {
	n.c.t.Helper()
	if n.proc == nil {
		n.c.Server.Restart()
		return
	}
	n.Stop()
	if err := n.start(); err != nil {
		n.c.t.Fatalf("restarting the agent of %s: %v", n.Name, err)
	}
}

// PID is the process ID of the node's agent (the server's, for n0).
func (n *Node) PID() int {
	if n.proc == nil {
		return n.c.Server.PID()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc.cmd.Process.Pid
}

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// Logs returns the agent's log (the server's, for n0).
func (n *Node) Logs() string {
	if n.proc == nil {
		return n.c.Server.Logs()
	}
	data, _ := os.ReadFile(n.logPath)
	return string(data)
}

func (n *Node) cleanup() {
	n.Stop()
	out, err := runCommand(n.NetNS, n.c.Server.binary, "agent", "reset", "--data-dir", n.dataDir)
	if err != nil {
		n.c.t.Errorf("havre agent reset on %s: %v\n%s", n.Name, err, out)
	}
}

func (n *Node) dumpLogOnFailure() {
	if n.c.t.Failed() {
		n.c.t.Logf("agent log of %s (%s, last 200 lines):\n%s", n.Name, n.logPath, tail(n.Logs(), 200))
	}
}

// Do runs fn on an OS thread in the node's network namespace. Sockets fn
// opens stay in the node's namespace and may be used afterwards from any
// goroutine.
func (n *Node) Do(fn func() error) error { return inNetNS(n.NetNS, fn) }

// DoOutside runs fn in the underlay's namespace: outside the cluster.
func (c *Cluster) DoOutside(fn func() error) error { return inNetNS(c.Underlay, fn) }

func inNetNS(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer ns.Close()
	return netnstest.Do(ns, fn)
}

// DialContext dials from the node's network namespace (as a process of
// that node would).
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// HTTPClient is an HTTP client whose connections start on the node,
// without keep-alive (each request a new connection, so load balancing
// shows). Requests time out after timeout.
func (n *Node) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
}

// Get GETs url from the node and returns the status code and body.
func (n *Node) Get(url string, timeout time.Duration) (int, string, error) {
	return get(n.HTTPClient(timeout), url)
}

// TestHTTPClient is an HTTP client of the test process (on the underlay,
// outside the cluster), without keep-alive.
func (c *Cluster) TestHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for b.Len() < 1<<20 {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String(), nil
}

// Exec runs a command in the node's network namespace (a host binary, as
// the node's own processes would run it) and returns its combined output.
func (n *Node) Exec(name string, args ...string) (string, error) {
	return runCommand(n.NetNS, name, args...)
}

// inNode is a command run in the network namespace netns ("": this
// process's). nsenter, not `ip netns exec`: that also gives the command a
// mount namespace with a fresh /sys, without the cgroup filesystem runc
// needs.
func inNode(ctx context.Context, netns, name string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + netns, "--", name}, args...)...)
}

// ErrRefused reports whether err is a refused connection.
func ErrRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// NodePortURL is http://<node IP>:<port><path>.
func (n *Node) URL(port int32, path string) string {
	return "http://" + net.JoinHostPort(n.IP, strconv.Itoa(int(port))) + path
}

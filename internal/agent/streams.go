package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/streaming"
	"github.com/havre/havre/internal/pki"
)

// DefaultStreamingPort is the port of the agent's streaming API (logs,
// exec, attach, port-forward), the kubelet's.
const DefaultStreamingPort = 10250

var podsResource = schema.GroupResource{Resource: "pods"}

// startStreaming serves the streaming API to the API server on the node's
// port. Its serving certificate is self-signed and made at start; clients
// must present the API server's certificate of the cluster CA.
func (a *Agent) startStreaming(ctx context.Context, wg *sync.WaitGroup) error {
	port := a.opts.StreamingPort
	if port == 0 {
		port = DefaultStreamingPort
	}
	if port < 0 {
		return nil
	}
	cas, err := a.clusterCAs()
	if err != nil {
		return err
	}
	_, hostIPs, _ := a.facts()
	cert, err := selfSignedCert(a.nodeName, hostIPs)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("the streaming API's port: %w (choose another with --streaming-port)", err)
	}
	a.streamingPort = int32(ln.Addr().(*net.TCPAddr).Port)
	srv := streaming.New(streamingNode{a})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln, streaming.TLSConfig(cert, cas)); err != nil {
			slog.Error("streaming API stopped", "err", err)
		}
	}()
	slog.Info("streaming API listening", "port", a.streamingPort)
	return nil
}

// clusterCAs is the cluster CA the agent trusts the API server with.
func (a *Agent) clusterCAs() (*x509.CertPool, error) {
	tc := a.opts.RESTConfig.TLSClientConfig
	data := tc.CAData
	if len(data) == 0 && tc.CAFile != "" {
		var err error
		if data, err = os.ReadFile(tc.CAFile); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("the streaming API needs the cluster CA (--ca-file)")
	}
	return pool, nil
}

// selfSignedCert is the streaming server's certificate, for the node's name
// and addresses, valid a year: the kubelet's default when no certificate is
// given.
func selfSignedCert(nodeName string, ips []string) (tls.Certificate, error) {
	addrs := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, ip := range ips {
		if p := net.ParseIP(ip); p != nil {
			addrs = append(addrs, p)
		}
	}
	cn := nodeName + "@" + strconv.FormatInt(time.Now().Unix(), 10)
	return pki.SelfSignedServing(cn, []string{nodeName, "localhost"}, addrs, 365*24*time.Hour)
}

// streamingNode gives the streaming server the agent's pods and runtime.
type streamingNode struct{ a *Agent }

func (n streamingNode) pod(namespace, name string) (*corev1.Pod, error) {
	if n.a.podIndexer == nil {
		return nil, apierrors.NewServiceUnavailable("the node agent is starting")
	}
	obj, ok, err := n.a.podIndexer.GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apierrors.NewNotFound(podsResource, name)
	}
	return obj.(*corev1.Pod), nil
}

func (n streamingNode) Container(ctx context.Context, namespace, podName, name string, previous bool) (streaming.Container, error) {
	pod, err := n.pod(namespace, podName)
	if err != nil {
		return streaming.Container{}, err
	}
	state, err := observe(ctx, n.a.rt, &n.a.statuses, pod.UID)
	if err != nil {
		return streaming.Container{}, err
	}
	inst := state.instances(name, "")
	if len(inst) == 0 {
		if spec, _ := containerSpec(pod, name); spec == nil {
			return streaming.Container{}, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, podName))
		}
		return streaming.Container{}, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", name, podName, n.waitingReason(pod, name)))
	}
	c := inst[0]
	if previous {
		if len(inst) < 2 {
			return streaming.Container{}, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", name, podName))
		}
		c = inst[1]
	}
	st, err := n.a.cri.ContainerStatus(ctx, c.ID)
	if err != nil {
		return streaming.Container{}, err
	}
	logPath := st.GetLogPath()
	if logPath != "" && !filepath.IsAbs(logPath) {
		// Relative to the sandbox's log directory.
		logPath = filepath.Join(podLogDir(n.a.dirs.logs, pod), logPath)
	}
	slog.Debug("streaming: container", "pod", podName, "container", name, "id", c.ID, "log", logPath)
	return streaming.Container{ID: c.ID, LogPath: logPath, Running: c.State == runtimeapi.ContainerState_CONTAINER_RUNNING}, nil
}

// waitingReason is the reason a container shows while it has no instance.
func (n streamingNode) waitingReason(pod *corev1.Pod, name string) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name && cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
				return cs.State.Waiting.Reason
			}
		}
	}
	return "ContainerCreating"
}

func (n streamingNode) Sandbox(ctx context.Context, namespace, podName string) (string, error) {
	pod, err := n.pod(namespace, podName)
	if err != nil {
		return "", err
	}
	state, err := observe(ctx, n.a.rt, &n.a.statuses, pod.UID)
	if err != nil {
		return "", err
	}
	sb := state.current()
	if sb == nil || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a running sandbox", podName))
	}
	return sb.Id, nil
}

func (n streamingNode) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (string, error) {
	r, err := n.a.cri.Runtime.Exec(ctx, req)
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (n streamingNode) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (string, error) {
	r, err := n.a.cri.Runtime.Attach(ctx, req)
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

func (n streamingNode) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (string, error) {
	r, err := n.a.cri.Runtime.PortForward(ctx, req)
	if err != nil {
		return "", err
	}
	return r.Url, nil
}

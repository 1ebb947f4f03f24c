package prober

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// hostPort splits a test server's URL.
func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(port)
	return host, n
}

func TestHTTPProbe(t *testing.T) {
	var mu sync.Mutex
	var gotHeaders http.Header
	var gotHost string
	seen := func() (http.Header, string) {
		mu.Lock()
		defer mu.Unlock()
		return gotHeaders, gotHost
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHeaders, gotHost = r.Header.Clone(), r.Host
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/here":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}

	for _, tc := range []struct {
		name    string
		action  corev1.HTTPGetAction
		timeout time.Duration
		want    Outcome
		output  string
	}{
		{"success", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)}, time.Second, OutcomeSuccess, "fine"},
		{"named port", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http")}, time.Second, OutcomeSuccess, "fine"},
		{"status 500", corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)}, time.Second, OutcomeFailure, "HTTP probe failed with statuscode: 500"},
		{"local redirect followed", corev1.HTTPGetAction{Path: "/here", Port: intstr.FromInt(port)}, time.Second, OutcomeSuccess, "fine"},
		{"foreign redirect not followed", corev1.HTTPGetAction{Path: "/away", Port: intstr.FromInt(port)}, time.Second, OutcomeWarning, "Probe terminated redirects"},
		{"timeout", corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)}, 50 * time.Millisecond, OutcomeFailure, "Client.Timeout exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &corev1.ProbeHandler{HTTPGet: &tc.action}
			got, out, err := Run(context.Background(), h, tc.timeout, Target{PodIP: host, Container: c}, nil)
			if err != nil || got != tc.want || !strings.Contains(out, tc.output) {
				t.Errorf("Run = %v, %q, %v; want %v, %q", got, out, err, tc.want, tc.output)
			}
		})
	}

	// Headers: the default User-Agent and Accept, or the probe's own, and
	// Host from the headers.
	h := &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)}}
	if got, _, _ := Run(context.Background(), h, time.Second, Target{PodIP: host, Container: c}, nil); got != OutcomeSuccess {
		t.Fatal(got)
	}
	if hdr, _ := seen(); hdr.Get("User-Agent") != "kube-probe/1.37" || hdr.Get("Accept") != "*/*" {
		t.Errorf("default headers %v", hdr)
	}
	h.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "User-Agent", Value: "mine"}, {Name: "X-Custom", Value: "1"}, {Name: "Host", Value: "example.test"}, {Name: "Accept", Value: ""}}
	Run(context.Background(), h, time.Second, Target{PodIP: host, Container: c}, nil)
	if hdr, host := seen(); hdr.Get("User-Agent") != "mine" || hdr.Get("X-Custom") != "1" || host != "example.test" || len(hdr.Values("Accept")) != 0 {
		t.Errorf("probe headers %v host %q", hdr, host)
	}

	// A port name the container does not have: the probe cannot run.
	h = &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("nope")}}
	if _, _, err := Run(context.Background(), h, time.Second, Target{PodIP: host, Container: c}, nil); err == nil || !strings.Contains(err.Error(), "port nope not found") {
		t.Errorf("unknown port name: %v", err)
	}
	// Nothing listening: a failure, with the dial error.
	srv.Close()
	h = &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)}}
	if got, out, err := Run(context.Background(), h, time.Second, Target{PodIP: host, Container: c}, nil); got != OutcomeFailure || err != nil || !strings.Contains(out, "connection refused") {
		t.Errorf("closed port: %v %q %v", got, out, err)
	}
}

func TestNewHTTPGetRequest(t *testing.T) {
	req, err := NewHTTPGetRequest(&corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/x?y=1", Port: intstr.FromString("8443")}, nil, "10.0.0.1", "lifecycle")
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.String() != "https://10.0.0.1:8443/x?y=1" || req.Header.Get("User-Agent") != "kube-lifecycle/1.37" {
		t.Errorf("request %s %v", req.URL, req.Header)
	}
	if _, err := NewHTTPGetRequest(&corev1.HTTPGetAction{Port: intstr.FromInt(0)}, nil, "10.0.0.1", "probe"); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h := &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}
	if got, _, err := Run(context.Background(), h, time.Second, Target{PodIP: "127.0.0.1"}, nil); got != OutcomeSuccess || err != nil {
		t.Errorf("open port: %v %v", got, err)
	}
	l.Close()
	if got, out, err := Run(context.Background(), h, time.Second, Target{PodIP: "127.0.0.1"}, nil); got != OutcomeFailure || err != nil || !strings.Contains(out, "connection refused") {
		t.Errorf("closed port: %v %q %v", got, out, err)
	}
}

func TestGRPCProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	go srv.Serve(l)
	defer srv.Stop()

	probe := func(service *string) (Outcome, string) {
		t.Helper()
		h := &corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port), Service: service}}
		got, out, err := Run(context.Background(), h, time.Second, Target{PodIP: "127.0.0.1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got, out
	}
	if got, out := probe(nil); got != OutcomeSuccess {
		t.Errorf("serving server: %v %q", got, out)
	}
	db := "db"
	if got, out := probe(&db); got != OutcomeFailure || out != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("unhealthy service: %v %q", got, out)
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
	if got, out := probe(&db); got != OutcomeSuccess {
		t.Errorf("recovered service: %v %q", got, out)
	}
	srv.Stop()
	if got, out := probe(nil); got != OutcomeFailure || !strings.Contains(out, "failed to connect service") {
		t.Errorf("no server: %v %q", got, out)
	}
}

// fakeExec answers ExecSync from a function.
type fakeExec func(id string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error)

func (f fakeExec) ExecSync(_ context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error) {
	return f(id, cmd, timeout)
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return `command "sleep 10" timed out` }
func (timeoutErr) Timeout() bool { return true }

func TestExecProbe(t *testing.T) {
	var gotTimeout time.Duration
	ex := fakeExec(func(id string, cmd []string, timeout time.Duration) ([]byte, []byte, int32, error) {
		gotTimeout = timeout
		switch cmd[0] {
		case "ok":
			return []byte("out"), nil, 0, nil
		case "fail":
			return []byte("out "), []byte("err"), 2, nil
		case "slow":
			return nil, nil, 0, timeoutErr{}
		}
		return nil, nil, 0, errors.New("no such container")
	})
	for _, tc := range []struct {
		cmd    string
		want   Outcome
		output string
		err    bool
	}{
		{"ok", OutcomeSuccess, "out", false},
		{"fail", OutcomeFailure, "out err", false},
		{"slow", OutcomeFailure, `command "sleep 10" timed out`, false},
		{"broken", OutcomeFailure, "", true},
	} {
		h := &corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{tc.cmd}}}
		got, out, err := Run(context.Background(), h, 3*time.Second, Target{ContainerID: "c1"}, ex)
		if got != tc.want || out != tc.output || (err != nil) != tc.err {
			t.Errorf("%s: %v %q %v", tc.cmd, got, out, err)
		}
	}
	if gotTimeout != 3*time.Second {
		t.Errorf("timeout passed %v", gotTimeout)
	}
}

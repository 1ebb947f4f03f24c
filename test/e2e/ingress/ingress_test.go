package ingress_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

const echoImage = "havre.test/echo:e2e"

func ctx(t *testing.T) context.Context { return framework.RequestContext(t) }

// startNode starts a server with its agent, waits for its node to be
// Ready and imports the echo image.
func startNode(t *testing.T) *framework.Server {
	t.Helper()
	framework.RequireNodeAgent(t)
	archive := framework.BuildImage(t, "test/images/echo", echoImage)
	s := framework.StartServer(t, framework.WithAgent())
	framework.Eventually(t, 90*time.Second, func() (bool, error) {
		nodes, err := s.Clientset().CoreV1().Nodes().List(ctx(t), metav1.ListOptions{})
		if err != nil || len(nodes.Items) == 0 {
			return false, nil
		}
		for _, c := range nodes.Items[0].Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && nodes.Items[0].Spec.PodCIDR != "" {
				return true, nil
			}
		}
		return false, nil
	}, "the node is not Ready")
	s.ImportImage(t, archive)
	return s
}

func echoDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(10)),
					Containers: []corev1.Container{{
						Name: "echo", Image: echoImage, ImagePullPolicy: corev1.PullNever,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "grpc", ContainerPort: 9090}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h2c := "kubernetes.io/h2c"
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": name},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "grpc", Port: 9090, TargetPort: intstr.FromString("grpc"), AppProtocol: &h2c}},
	}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx(t), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalECPrivateKey(key)
	leaf, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k}), leaf
}

func path(p string, pt networkingv1.PathType, svc string, port int32) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &pt, Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

// client sends every request to the proxy's port, whatever the URL's host.
func client(port int, tlsConf *tls.Config) *http.Client {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func fetch(c *http.Client, url string) (int, string, http.Header, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// TestIngress: routing by host and path type, status, TLS with SNI, the
// HTTP→HTTPS redirect, WebSocket, gRPC over h2c, and a rolling update of
// the backend under load without a failed request.
func TestIngress(t *testing.T) {
	s := startNode(t)
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "ingress")
	echoDeployment(t, cs, ns, "echo", 2)
	echoDeployment(t, cs, ns, "other", 1)
	s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/echo", "deployment/other", "--timeout=120s")

	certPEM, keyPEM, leaf := selfSigned(t, "secure.test")
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix, exact, impl := networkingv1.PathTypePrefix, networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "site"}, Spec: networkingv1.IngressSpec{
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"secure.test"}, SecretName: "secure-tls"}},
		Rules: []networkingv1.IngressRule{
			rule("a.test", path("/", prefix, "echo", 80), path("/exact", exact, "other", 80), path("/impl", impl, "other", 80)),
			rule("*.wild.test", path("/", prefix, "other", 80)),
			rule("secure.test", path("/", prefix, "echo", 80)),
			rule("grpc.test", path("/", prefix, "echo", 9090)),
		},
	}}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx(t), ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	httpC := client(s.IngressHTTPPort(), nil)
	base := fmt.Sprintf("http://a.test:%d", s.IngressHTTPPort())
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		code, body, _, err := fetch(httpC, base+"/")
		return err == nil && code == 200 && strings.HasPrefix(body, "echo echo-"), nil
	}, "the Ingress is not served")

	t.Run("class and status", func(t *testing.T) {
		class, err := cs.NetworkingV1().IngressClasses().Get(ctx(t), "havre", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if class.Spec.Controller != "havre.io/ingress" || class.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
			t.Errorf("IngressClass havre: %+v", class)
		}
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			got, err := cs.NetworkingV1().Ingresses(ns).Get(ctx(t), "site", metav1.GetOptions{})
			return err == nil && len(got.Status.LoadBalancer.Ingress) == 1 && got.Status.LoadBalancer.Ingress[0].IP != "", err
		}, "no status.loadBalancer")
	})

	t.Run("hosts and paths", func(t *testing.T) {
		for _, tc := range []struct {
			url, want string
			code      int
		}{
			{base + "/", "echo echo-", 200},
			{base + "/some/path?q=1", "echo echo-", 200},
			{base + "/exact", "echo other-", 200},
			{base + "/exact/sub", "echo echo-", 200}, // Exact does not match below
			{base + "/impl/sub", "echo other-", 200}, // ImplementationSpecific is Prefix
			{base + "/implx", "echo echo-", 200},     // element-wise
			{fmt.Sprintf("http://x.wild.test:%d/", s.IngressHTTPPort()), "echo other-", 200},
			{fmt.Sprintf("http://unknown.test:%d/", s.IngressHTTPPort()), "", 404},
		} {
			code, body, _, err := fetch(httpC, tc.url)
			if err != nil || code != tc.code || !strings.HasPrefix(body, tc.want) {
				t.Errorf("GET %s: %d %q %v; want %d %q...", tc.url, code, body, err, tc.code, tc.want)
			}
		}
		// The backend sees the request's Host and path.
		if _, body, _, _ := fetch(httpC, base+"/p?x=y"); !strings.Contains(body, " a.test:") || !strings.HasSuffix(strings.TrimSpace(body), "/p?x=y") {
			t.Errorf("Host and path at the backend: %q", body)
		}
	})

	t.Run("TLS with SNI and redirect", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		httpsC := client(s.IngressHTTPSPort(), &tls.Config{RootCAs: pool})
		url := fmt.Sprintf("https://secure.test:%d/hello", s.IngressHTTPSPort())
		resp, err := httpsC.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "echo echo-") || resp.ProtoMajor != 2 {
			t.Errorf("GET %s: %s %d %q", url, resp.Proto, resp.StatusCode, b)
		}
		if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, leaf.Raw) {
			t.Errorf("served certificate %v", resp.TLS.PeerCertificates[0].DNSNames)
		}
		// curl, as users would.
		if curl, err := exec.LookPath("curl"); err == nil {
			ca := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(s.IngressHTTPSPort())
			out, err := exec.Command(curl, "-sS", "--http2", "--cacert", ca, "--resolve", "secure.test:"+port+":127.0.0.1", "https://secure.test:"+port+"/curl").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "echo echo-") {
				t.Errorf("curl: %s %v", out, err)
			}
		}
		// Another name gets the fake certificate.
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.IngressHTTPSPort()), &tls.Config{ServerName: "a.test", InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "Havre Ingress Fake Certificate" {
			t.Errorf("a.test got certificate %q", cn)
		}
		conn.Close()
		code, _, h, err := fetch(httpC, fmt.Sprintf("http://secure.test:%d/x?y=1", s.IngressHTTPPort()))
		if want := fmt.Sprintf("https://secure.test:%d/x?y=1", s.IngressHTTPSPort()); err != nil || code != 308 || h.Get("Location") != want {
			t.Errorf("redirect: %d %q %v, want 308 %q", code, h.Get("Location"), err, want)
		}
		// Hosts without a certificate are not redirected.
		if code, _, _, _ := fetch(httpC, base+"/"); code != 200 {
			t.Errorf("a.test over HTTP: %d", code)
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
		c, _, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", s.IngressHTTPPort()), http.Header{"Host": {"a.test"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := 0; i < 5; i++ {
			m := fmt.Sprintf("message %d", i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, got, err := c.ReadMessage(); err != nil || string(got) != m {
				t.Fatalf("echo of %q: %q %v", m, got, err)
			}
		}
	})

	t.Run("gRPC over h2c", func(t *testing.T) {
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", s.IngressHTTPPort()),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("grpc.test"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx(t), 10*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health check: %v %v", resp, err)
		}
	})

	t.Run("rolling update without a failed request", func(t *testing.T) {
		var ok, failed atomic.Int64
		var mu sync.Mutex
		var failures []string
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Go(func() {
				c := client(s.IngressHTTPPort(), nil)
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, body, _, err := fetch(c, base+"/")
					if err == nil && code == 200 && strings.HasPrefix(body, "echo echo-") {
						ok.Add(1)
						continue
					}
					failed.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		time.Sleep(time.Second)
		s.MustKubectl(t, "-n", ns, "rollout", "restart", "deployment/echo")
		s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/echo", "--timeout=180s")
		// Until the old pods are gone.
		framework.Eventually(t, 60*time.Second, func() (bool, error) {
			pods, err := cs.CoreV1().Pods(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "app=echo"})
			return err == nil && len(pods.Items) == 2, err
		}, "the old pods did not go")
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
		t.Logf("rolling update: %d requests served, %d failed", ok.Load(), failed.Load())
		if failed.Load() != 0 || ok.Load() == 0 {
			t.Errorf("%d failed requests (of %d): %v", failed.Load(), ok.Load()+failed.Load(), failures)
		}
	})

	t.Run("annotations", func(t *testing.T) { testAnnotations(t, s, ns) })
}

// testAnnotations checks ingress-nginx's annotations migrating users rely
// on, through the node's proxy: proxy-body-size, basic auth,
// whitelist-source-range and cookie affinity.
func testAnnotations(t *testing.T, s *framework.Server, ns string) {
	cs := s.Clientset()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "basic-auth"},
		Data: map[string][]byte{"auth": []byte("alice:" + string(hash) + "\n")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix := networkingv1.PathTypePrefix
	const nginx = "nginx.ingress.kubernetes.io/"
	for name, ann := range map[string]map[string]string{
		"limited": {nginx + "proxy-body-size": "1k"},
		"guarded": {nginx + "auth-type": "basic", nginx + "auth-secret": "basic-auth", nginx + "auth-realm": "Authentication Required"},
		"denied":  {nginx + "whitelist-source-range": "192.0.2.0/24"},
		"allowed": {nginx + "whitelist-source-range": "192.0.2.0/24,127.0.0.0/8"},
		"sticky":  {nginx + "affinity": "cookie", nginx + "session-cookie-name": "route"},
	} {
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{rule(name+".test", path("/", prefix, "echo", 80))}}}
		if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx(t), ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := client(s.IngressHTTPPort(), nil)
	url := func(host, p string) string { return fmt.Sprintf("http://%s.test:%d%s", host, s.IngressHTTPPort(), p) }
	do := func(req *http.Request) (int, string, http.Header) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for _, host := range []string{"limited", "denied", "allowed", "sticky"} {
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			code, _, _, err := fetch(c, url(host, "/"))
			return err == nil && code != http.StatusNotFound, nil
		}, "%s.test is not served", host)
	}

	t.Run("proxy-body-size", func(t *testing.T) {
		small, _ := http.NewRequest(http.MethodPost, url("limited", "/upload"), strings.NewReader(strings.Repeat("x", 512)))
		if code, body, _ := do(small); code != http.StatusOK || strings.TrimSpace(body) != "512" {
			t.Errorf("POST of 512 bytes: %d %q, want 200 \"512\"", code, body)
		}
		big, _ := http.NewRequest(http.MethodPost, url("limited", "/upload"), strings.NewReader(strings.Repeat("x", 4096)))
		if code, _, _ := do(big); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST of 4 KiB with proxy-body-size 1k: %d, want 413", code)
		}
	})

	t.Run("basic auth", func(t *testing.T) {
		framework.Eventually(t, 30*time.Second, func() (bool, error) {
			code, _, _, err := fetch(c, url("guarded", "/"))
			return err == nil && code == http.StatusUnauthorized, nil
		}, "guarded.test does not ask for credentials")
		req, _ := http.NewRequest(http.MethodGet, url("guarded", "/"), nil)
		_, _, h := do(req)
		if got := h.Get("WWW-Authenticate"); got != `Basic realm="Authentication Required"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		req.SetBasicAuth("alice", "wrong")
		if code, _, _ := do(req); code != http.StatusUnauthorized {
			t.Errorf("a wrong password: %d, want 401", code)
		}
		req.SetBasicAuth("alice", "s3cret")
		if code, body, _ := do(req); code != http.StatusOK || !strings.HasPrefix(body, "echo echo-") {
			t.Errorf("alice's password: %d %q, want 200 from the backend", code, body)
		}
	})

	t.Run("whitelist-source-range", func(t *testing.T) {
		if code, _, _, err := fetch(c, url("denied", "/")); err != nil || code != http.StatusForbidden {
			t.Errorf("a client outside the allowed ranges: %d %v, want 403", code, err)
		}
		if code, _, _, err := fetch(c, url("allowed", "/")); err != nil || code != http.StatusOK {
			t.Errorf("a client inside the allowed ranges: %d %v, want 200", code, err)
		}
	})

	t.Run("cookie affinity", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, url("sticky", "/"), nil)
		_, first, h := do(req)
		cookie := ""
		for _, sc := range h.Values("Set-Cookie") {
			if strings.HasPrefix(sc, "route=") {
				cookie, _, _ = strings.Cut(sc, ";")
			}
		}
		if cookie == "" {
			t.Fatalf("no affinity cookie \"route\" set: %v", h.Values("Set-Cookie"))
		}
		for i := 0; i < 20; i++ {
			req, _ := http.NewRequest(http.MethodGet, url("sticky", "/"), nil)
			req.Header.Set("Cookie", cookie)
			if _, body, _ := do(req); body != first {
				t.Fatalf("request %d with the cookie went to %q, the first to %q", i, body, first)
			}
		}
		// Without the cookie, both replicas answer.
		seen := map[string]bool{}
		for i := 0; i < 50 && len(seen) < 2; i++ {
			_, body, _, _ := fetch(c, url("sticky", "/"))
			seen[body] = true
		}
		if len(seen) < 2 {
			t.Errorf("without the cookie only %v answered", seen)
		}
	})
}

package certificates_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/havre/havre/internal/network/ingress/routes"
	"github.com/havre/havre/test/framework"
)

const webImage = "havre.test/web:certificates"

// TestEveryProxyNode runs a cluster of three nodes, each with its ingress
// proxy (n0: the server's agent; n1, n2: `havre agent`, each in its own
// network namespace), and Pebble on the test process's side of the
// underlay, which resolves every name to node n2 and so validates the
// challenges against that agent's proxy. One Ingress with a public name
// gets exactly one ACME order, its TLS Secret is written once, and every
// node's proxy serves that one certificate by SNI and routes the host to
// the backend pod.
func TestEveryProxyNode(t *testing.T) {
	framework.RequireNodeAgent(t)
	const host = "every-node.example.com"
	var p *pebble
	c := framework.StartCluster(t, 3, framework.WithClusterArgs(func(c *framework.Cluster) []string {
		p = startPebbleAt(t, net.ParseIP(c.TestAddr()), net.ParseIP(c.Nodes[2].IP),
			framework.ClusterIngressHTTPPort, framework.ClusterIngressHTTPSPort, time.Hour)
		return []string{"--acme-directory", p.Directory, "--acme-ca-bundle", p.CABundle, "--acme-email", "e2e@example.com"}
	}))
	c.ImportImage(t, framework.BuildImage(t, "test/images/web", webImage))
	cs := c.Server.Clientset()
	ctx := context.Background()
	ns := "every-node"
	namespace(t, cs, ns)
	webBackend(t, c, ns)

	// Every write of the Ingress's TLS Secret, from before the Ingress
	// exists to the end of the test.
	secret := routes.DefaultTLSSecretName("web", 0)
	list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	sel := fields.OneTermEqualSelector("metadata.name", secret).String()
	rw, err := watchtools.NewRetryWatcherWithContext(t.Context(), list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Secrets(ns).Watch(ctx, o)
		},
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list, nil },
	})
	must(t, err)
	var (
		writesMu sync.Mutex
		writes   []string
	)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range rw.ResultChan() {
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				s := ev.Object.(*corev1.Secret)
				writesMu.Lock()
				writes = append(writes, string(ev.Type)+" "+s.ResourceVersion)
				writesMu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { rw.Stop(); <-watched })

	created := time.Now()
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ingress(ns, "web", host), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leaf := waitCert(t, cs, ns, secret, nil, 3*time.Minute)
	t.Logf("Ingress created → certificate in the Secret: %v", time.Since(created))
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, secret, metav1.GetOptions{})
	must(t, err)
	verify(t, p, leaf, sec.Data[corev1.TLSCertKey], host)

	for _, n := range c.Nodes {
		httpsAddr := net.JoinHostPort(n.IP, strconv.Itoa(n.IngressHTTPSPort()))
		httpAddr := net.JoinHostPort(n.IP, strconv.Itoa(n.IngressHTTPPort()))
		// The node's proxy serves the issued certificate for the host.
		framework.Eventually(t, time.Minute, func() (bool, error) {
			served, err := servedCert(httpsAddr, host, p.roots)
			return err == nil && served.SerialNumber.Cmp(leaf.SerialNumber) == 0, nil
		}, "%s does not serve the issued certificate for %s", n.Name, host)
		// And routes the host to the backend: HTTPS to the pod, plain HTTP
		// redirected to HTTPS.
		https := nodeClient(httpsAddr, &tls.Config{RootCAs: p.roots})
		framework.Eventually(t, time.Minute, func() (bool, error) {
			code, body, _, err := request(https, "https://"+host+"/")
			return err == nil && code == http.StatusOK && strings.HasPrefix(body, "web "), nil
		}, "%s does not route https://%s/ to the backend", n.Name, host)
		code, _, loc, err := request(nodeClient(httpAddr, nil), "http://"+host+"/x")
		if err != nil || code != http.StatusPermanentRedirect || loc != "https://"+host+"/x" {
			t.Errorf("%s: http://%s/x: %d %q %v, want 308 to https://%[2]s/x", n.Name, host, code, loc, err)
		}
	}

	t.Logf("Ingress created → every node serves the certificate and routes the host: %v", time.Since(created))
	if n := p.Orders(); n != 1 {
		t.Errorf("%d ACME orders for %s with three proxy nodes, want 1", n, host)
	}
	// Every proxy node used the one Secret: it was written once (a write
	// since would have been seen by now, the watch being ahead of the
	// proxies' checks above, which saw this certificate).
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		writesMu.Lock()
		defer writesMu.Unlock()
		return len(writes) > 0, nil
	}, "the watch did not see the Secret written")
	writesMu.Lock()
	if len(writes) != 1 {
		t.Errorf("Secret %s/%s written %d times, want once: %v", ns, secret, len(writes), writes)
	}
	writesMu.Unlock()
	if n := p.Orders(); n != 1 {
		t.Errorf("%d ACME orders for %s at the end, want 1", n, host)
	}
}

// webBackend runs one pod of the web image behind Service web (port 80 →
// 8080) in ns and waits for it to be Ready.
func webBackend(t *testing.T, c *framework.Cluster, ns string) {
	t.Helper()
	cs := c.Server.Clientset()
	ctx := context.Background()
	one := int32(1)
	labels := map[string]string{"app": "web"}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
						PeriodSeconds: 1},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	must(t, err)
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	must(t, err)
	c.Server.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/web", "--timeout=180s")
}

// servedCert is the leaf a TLS server at addr presents for serverName,
// verified against roots.
func servedCert(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// nodeClient is an HTTP client whose every connection goes to addr,
// whatever the URL's host, without following redirects.
func nodeClient(addr string, tlsConf *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   tlsConf,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// request GETs url and returns the status, the body and the Location.
func request(c *http.Client, url string) (int, string, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), resp.Header.Get("Location"), err
}

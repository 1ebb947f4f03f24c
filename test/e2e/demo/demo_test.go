// Package demo_test checks the demo `make run` installs, as its users
// reach it: deploy/demo.yaml applied unchanged on a real node, the page and
// the API answered over HTTPS (HTTP/2) by the built-in ingress proxy with
// a certificate of the cluster issuer, HTTP redirected to HTTPS, and the
// API's count kept in PostgreSQL on a claim across the database pod's
// deletion.
package demo_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/certs/clusterissuer"
	"github.com/havre/havre/internal/imagebuild"
	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	nodeName = "havre-demo"
	host     = "demo.havre.test"
	timeout  = 180 * time.Second
)

func TestDemo(t *testing.T) {
	framework.RequireNodeAgent(t)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs("--node-name", nodeName))
	s.WaitNodeReady(t, nodeName, 60*time.Second)
	for _, img := range []string{
		framework.HostImage(t, "test/images/frontend", "havre.local/demo/frontend:0.1", imagebuild.Nginx),
		framework.BuildImage(t, "test/images/demo-api", "havre.local/demo/api:0.1"),
		framework.PostgresImage(t, "havre.local/demo/postgres:0.1"),
	} {
		s.ImportImage(t, img)
	}
	root, err := framework.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	s.MustKubectl(t, "apply", "-f", filepath.Join(root, "deploy", "demo.yaml"))
	for _, w := range []string{"deployment/frontend", "deployment/api", "statefulset/db"} {
		s.MustKubectl(t, "-n", "demo", "rollout", "status", w, "--timeout="+timeout.String())
	}

	cs := s.Clientset()
	var ca []byte
	framework.Eventually(t, timeout, func() (bool, error) {
		sec, err := cs.CoreV1().Secrets(clusterissuer.SecretNamespace).Get(context.Background(), clusterissuer.SecretName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ca = sec.Data["tls.crt"]
		_, err = cs.CoreV1().Secrets("demo").Get(context.Background(), "demo-tls", metav1.GetOptions{})
		return err == nil, nil
	}, "the cluster issuer's CA and the Secret demo/demo-tls")
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatalf("the cluster issuer's Secret has no CA certificate: %q", ca)
	}
	https := client(s.IngressHTTPSPort(), &tls.Config{RootCAs: roots, ServerName: host})

	// The page, over HTTP/2 as a browser gets it.
	var page string
	framework.Eventually(t, timeout, func() (bool, error) {
		resp, err := https.Get("https://" + host + "/")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		if resp.StatusCode != http.StatusOK {
			return false, nil
		}
		if resp.ProtoMajor != 2 {
			return false, fmt.Errorf("the page came over %s, want HTTP/2", resp.Proto)
		}
		return true, nil
	}, "GET https://%s/ answers 200", host)
	if !strings.Contains(page, "<title>Havre demo</title>") {
		t.Fatalf("the page is not the demo's frontend: %.300s", page)
	}

	first := visit(t, https)
	if second := visit(t, https); second != first+1 {
		t.Fatalf("visits after a second POST = %d, want %d", second, first+1)
	}

	// Plain HTTP is redirected to HTTPS.
	plain := client(s.IngressHTTPPort(), nil)
	plain.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := plain.Get("http://" + host + "/api/visits")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "https://"+host) {
		t.Fatalf("GET http://%s/api/visits = %d Location %q, want a redirect to https://%s", host, resp.StatusCode, loc, host)
	}

	// The count is in PostgreSQL on a claim: it survives the database pod.
	if err := cs.CoreV1().Pods("demo").Delete(context.Background(), "db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var after int
	framework.Eventually(t, timeout, func() (bool, error) {
		n, err := tryVisit(https)
		if err != nil {
			return false, nil
		}
		after = n
		return true, nil
	}, "the API answers again after the database pod was replaced")
	if after != first+2 {
		t.Fatalf("visits after the database pod was replaced = %d, want %d", after, first+2)
	}
}

// client is an HTTP client whose every connection goes to the node's
// ingress port on loopback, whatever the URL's host (as curl --resolve).
func client(port int, tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		},
		TLSClientConfig:   tlsConfig,
		ForceAttemptHTTP2: true,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func visit(t *testing.T, c *http.Client) int {
	t.Helper()
	var n int
	framework.Eventually(t, timeout, func() (bool, error) {
		v, err := tryVisit(c)
		n = v
		return err == nil, nil
	}, "POST https://%s/api/visits answers", host)
	return n
}

func tryVisit(c *http.Client) (int, error) {
	resp, err := c.Post("https://"+host+"/api/visits", "application/json", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var v struct {
		Visits int `json:"visits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, err
	}
	return v.Visits, nil
}

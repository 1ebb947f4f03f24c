// Package rbac_test checks RBAC end to end against the havre binary: users
// of the static token file are allowed exactly what their roles grant,
// denied the rest with kube-apiserver's 403, cannot grant more than they
// hold, and see the bootstrap policy and ClusterRole aggregation at work.
package rbac_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

var ctx = framework.RequestContext

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t)
}

// user is a static-token user of the server.
type user struct {
	name       string
	cfg        *rest.Config
	cs         kubernetes.Interface
	kubeconfig string
}

// addUser adds a user in groups to the server's static token file (which
// the server rereads when it changes) and waits until its token
// authenticates.
func addUser(t *testing.T, s *framework.Server, name string, groups ...string) *user {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(b)
	path := filepath.Join(s.DataDir(), "server", "tokens.csv")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("%s,%s,uid-%s", token, name, name)
	if len(groups) > 0 {
		line += `,"` + strings.Join(groups, ",") + `"`
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	admin := s.RESTConfig()
	cfg := &rest.Config{Host: admin.Host, BearerToken: token, QPS: -1,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData, CAFile: admin.CAFile, ServerName: admin.ServerName}}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Authenticated once the request is no longer a 401 (a 403 will do).
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(c, "default", metaGet)
		return !apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Fatalf("user %s never authenticated", name)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["havre"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: caData(t, admin)}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: "havre", AuthInfo: name}
	kc.CurrentContext = name
	kubeconfig := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	return &user{name: name, cfg: cfg, cs: cs, kubeconfig: kubeconfig}
}

func caData(t *testing.T, cfg *rest.Config) []byte {
	t.Helper()
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	data, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// kubectl runs kubectl as the user.
func (u *user) kubectl(s *framework.Server, args ...string) (string, string, error) {
	return s.Kubectl(append([]string{"--kubeconfig", u.kubeconfig}, args...)...)
}

// eventually polls cond until it holds, failing t after a deadline.
func eventually(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

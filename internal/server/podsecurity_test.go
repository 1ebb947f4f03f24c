package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/admission/podsecurity"
	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/auth"
)

// startPodSecurityServer runs an API server in-process with the server's
// admission plugins, PodSecurity configured from the AdmissionConfiguration
// file admissionConfig (empty: Havre's default), and returns its loopback
// config.
func startPodSecurityServer(t *testing.T, admissionConfig string) *rest.Config {
	t.Helper()
	dir := t.TempDir()
	path := ""
	if admissionConfig != "" {
		path = filepath.Join(dir, "admission.yaml")
		if err := os.WriteFile(path, []byte(admissionConfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	podSecurity, err := podsecurity.LoadConfiguration(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := runTestServer(t, dir, nil, func(c *apiserver.Config) {
		authz := auth.Chain{auth.PrivilegedGroups{auth.GroupMasters}}
		chain := admission.NewChain()
		c.Authorizer, c.Admission = authz, chain
		c.PostStart = []func(context.Context, *rest.Config) error{startAdmission(chain, authz, admissionPlugins(podSecurity))}
	})
	return srv.LoopbackConfig()
}

// warningsRecorder collects a client's Warning headers.
type warningsRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *warningsRecorder) HandleWarningHeader(_ int, _ string, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, text)
}

func (r *warningsRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

// clientAs returns a client impersonating user (a member of system:masters,
// so that it is authorized) whose warnings go to the recorder; "" is the
// loopback user.
func clientAs(t *testing.T, cfg *rest.Config, user string) (kubernetes.Interface, *warningsRecorder) {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{auth.GroupMasters}}
	}
	rec := &warningsRecorder{}
	cfg.WarningHandlerWithContext = nil
	cfg.WarningHandler = rec
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func privilegedPod(name string) *corev1.Pod {
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}},
	}
}

// TestPodSecurity: the PodSecurity admission plugin as upstream's, through
// the API with client-go: the enforce label refuses with upstream's
// message and status, warn labels (and Havre's default of warn baseline)
// return Warning headers, exempt users are let through, workload
// resources are only warned about, and raising a namespace's enforce
// level warns about its existing pods.
func TestPodSecurity(t *testing.T) {
	cfg := startPodSecurityServer(t, `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      warn: baseline
    exemptions:
      usernames: [exempt-user]
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, _ := clientAs(t, cfg, "")
	for name, labels := range map[string]map[string]string{
		"restricted": {"pod-security.kubernetes.io/enforce": "restricted"},
		"warned":     {"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.30"},
		"plain":      nil,
	} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const restrictedMsg = `pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
	tests := []struct {
		name, user, namespace, pod string
		// err is the refusal's message ("": allowed), code its status.
		err      string
		code     int32
		warnings []string
	}{
		{name: "enforce restricted refuses a privileged pod", namespace: "restricted", pod: "x",
			err: restrictedMsg, code: 403},
		{name: "exempt user", user: "exempt-user", namespace: "restricted", pod: "exempt"},
		{name: "other user", user: "someone", namespace: "restricted", pod: "x",
			err: restrictedMsg, code: 403},
		{name: "warn label", namespace: "warned", pod: "w", warnings: []string{
			`would violate PodSecurity "restricted:v1.30": privileged (container "c" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`}},
		{name: "configured default warns baseline", namespace: "plain", pod: "p", warnings: []string{
			`would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := clientAs(t, cfg, tt.user)
			_, err := c.CoreV1().Pods(tt.namespace).Create(ctx, privilegedPod(tt.pod), metav1.CreateOptions{})
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				var status apierrors.APIStatus
				if !errors.As(err, &status) {
					t.Fatalf("got %v, want a refusal", err)
				}
				s := status.Status()
				if s.Message != tt.err || s.Code != tt.code || s.Reason != metav1.StatusReasonForbidden {
					t.Fatalf("got %d %s %q\nwant %d Forbidden %q", s.Code, s.Reason, s.Message, tt.code, tt.err)
				}
			}
			if got := rec.take(); strings.Join(got, "\n") != strings.Join(tt.warnings, "\n") {
				t.Fatalf("warnings %q\nwant %q", got, tt.warnings)
			}
		})
	}

	t.Run("workload resources are warned about, not refused", func(t *testing.T) {
		c, rec := clientAs(t, cfg, "")
		pod := privilegedPod("")
		labels := map[string]string{"app": "d"}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec}}}
		if _, err := c.AppsV1().Deployments("restricted").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := rec.take()
		if len(got) != 1 || !strings.HasPrefix(got[0], `would violate PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true)`) {
			t.Fatalf("warnings %q", got)
		}
	})

	t.Run("raising a namespace's enforce level lists violating pods", func(t *testing.T) {
		c, rec := clientAs(t, cfg, "")
		patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"baseline"}}}`)
		if _, err := c.CoreV1().Namespaces().Patch(ctx, "plain", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		want := []string{`existing pods in namespace "plain" violate the new PodSecurity enforce level "baseline:latest"`,
			`p: privileged`}
		if got := rec.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("warnings %q\nwant %q", got, want)
		}
	})

	t.Run("invalid level label", func(t *testing.T) {
		c, _ := clientAs(t, cfg, "")
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bad",
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "strict"}}}, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict"`) {
			t.Fatalf("got %v, want 422 on the label", err)
		}
	})
}

// TestPodSecurityDefault: without a configuration file, Havre's default
// refuses nothing (kube-system included) but warns about what baseline
// would refuse.
func TestPodSecurityDefault(t *testing.T) {
	cfg := startPodSecurityServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, rec := clientAs(t, cfg, "")
	for _, ns := range []string{"default", "kube-system"} {
		if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		rec.take()
		if _, err := c.CoreV1().Pods(ns).Create(ctx, privilegedPod("p"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		want := `would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`
		if got := rec.take(); len(got) != 1 || got[0] != want {
			t.Fatalf("%s: warnings %q, want %q", ns, got, want)
		}
	}
}

package podsecurity_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/test/framework"
)

const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  path: podsecurity.yaml
`

const podSecurityConfig = `apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  warn: baseline
exemptions:
  usernames: [e2e-exempt]
`

// privilegedPod is `kubectl run` of a privileged container.
func privilegedPod(ns, name string, extra ...string) []string {
	return append([]string{"run", name, "-n", ns, "--image=busybox", "--restart=Never",
		`--overrides={"spec":{"containers":[{"name":"` + name + `","image":"busybox","securityContext":{"privileged":true}}]}}`}, extra...)
}

// TestPodSecurity: a namespace labelled enforce=restricted refuses a
// privileged pod with upstream's message (kubectl: "Error from server
// (Forbidden)"), except for an exempt user; the configured default warns
// baseline (kubectl prints "Warning:"); raising a namespace's enforce
// level warns about its existing pods.
func TestPodSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"admission.yaml": admissionConfig, "podsecurity.yaml": podSecurityConfig} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := framework.StartServer(t, framework.WithArgs("--admission-control-config-file", filepath.Join(dir, "admission.yaml")))
	ns := framework.NewNamespace(t, s.Clientset(), "psa")
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		_, _, err := s.Kubectl("get", "serviceaccount", "default", "-n", ns)
		return err == nil, nil
	}, "ServiceAccount %s/default", ns)

	t.Run("baseline warn by default", func(t *testing.T) {
		_, stderr, err := s.Kubectl(privilegedPod(ns, "warned")...)
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		want := `Warning: would violate PodSecurity "baseline:latest": privileged (container "warned" must not set securityContext.privileged=true)`
		if !strings.Contains(stderr, want) {
			t.Fatalf("stderr %q, want %q", stderr, want)
		}
	})

	t.Run("existing pods are listed when the enforce level is raised", func(t *testing.T) {
		_, stderr, err := s.Kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		for _, want := range []string{
			`Warning: existing pods in namespace "` + ns + `" violate the new PodSecurity enforce level "restricted:latest"`,
			`Warning: warned: privileged, allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile`,
		} {
			if !strings.Contains(stderr, want) {
				t.Fatalf("stderr %q, want %q", stderr, want)
			}
		}
	})

	t.Run("enforce restricted refuses a privileged pod", func(t *testing.T) {
		_, stderr, err := s.Kubectl(privilegedPod(ns, "x")...)
		want := `Error from server (Forbidden): pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (container "x" must not set securityContext.privileged=true)`
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("err %v, stderr %q, want %q", err, stderr, want)
		}
	})

	t.Run("an exempt user is allowed", func(t *testing.T) {
		_, stderr, err := s.Kubectl(privilegedPod(ns, "exempt", "--as=e2e-exempt", "--as-group=system:masters")...)
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		if strings.Contains(stderr, "PodSecurity") {
			t.Fatalf("exempt user warned: %q", stderr)
		}
	})
}

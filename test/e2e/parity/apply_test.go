package parity_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func configMapYAML(ns, name string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n", name, ns)
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, data[k])
	}
	return b.String()
}

func deploymentYAML(ns, name, image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
  labels: {app: %[2]s}
spec:
  replicas: %[4]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
      - name: main
        image: %[3]s
        ports:
        - containerPort: 8080
`, ns, name, image, replicas)
}

func configMapData(t *testing.T, out string) map[string]string {
	t.Helper()
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return cm.Data
}

// TestClientSideApply: create, change, re-apply unchanged, remove a field
// (the three-way merge through the last-applied annotation).
func TestClientSideApply(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "csa")
	v1 := configMapYAML("csa", "cm", map[string]string{"a": "1", "b": "2"}) + "---\n" + deploymentYAML("csa", "web", "web:1", 2)
	out := kubectl(t, s, v1, "apply", "-f", "-")
	if want := []string{"configmap/cm created", "deployment.apps/web created"}; !slices.Equal(lines(out), want) {
		t.Fatalf("first apply printed %q, want %q", lines(out), want)
	}
	out = kubectl(t, s, v1, "apply", "-f", "-")
	if want := []string{"configmap/cm unchanged", "deployment.apps/web unchanged"}; !slices.Equal(lines(out), want) {
		t.Fatalf("re-apply printed %q, want %q", lines(out), want)
	}
	v2 := configMapYAML("csa", "cm", map[string]string{"a": "10"}) + "---\n" + deploymentYAML("csa", "web", "web:2", 2)
	out = kubectl(t, s, v2, "apply", "-f", "-")
	if want := []string{"configmap/cm configured", "deployment.apps/web configured"}; !slices.Equal(lines(out), want) {
		t.Fatalf("changed apply printed %q, want %q", lines(out), want)
	}
	if data := configMapData(t, kubectl(t, s, "", "-n", "csa", "get", "cm", "cm", "-o", "json")); len(data) != 1 || data["a"] != "10" {
		t.Errorf("after removing b and changing a: data %v", data)
	}
	img := kubectl(t, s, "", "-n", "csa", "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.metadata.generation}")
	if img != "web:2 2" {
		t.Errorf("image and generation %q, want %q", img, "web:2 2")
	}
	last := kubectl(t, s, "", "-n", "csa", "get", "cm", "cm", "-o", `jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`)
	if !strings.Contains(last, `"a":"10"`) || strings.Contains(last, `"b"`) {
		t.Errorf("last-applied annotation %q", last)
	}
}

// TestServerSideApply: field ownership, a conflict naming the other
// manager, --force-conflicts, and server dry-run.
func TestServerSideApply(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "ssa")
	cm := func(a string) string { return configMapYAML("ssa", "owned", map[string]string{"a": a, "shared": "x"}) }
	if out := kubectl(t, s, cm("1"), "apply", "--server-side", "-f", "-"); strings.TrimSpace(out) != "configmap/owned serverside-applied" {
		t.Fatalf("first server-side apply printed %q", out)
	}
	r := run(t, s, "", nil, cm("2"), "apply", "--server-side", "--field-manager=other", "-f", "-")
	if r.code == 0 {
		t.Fatalf("a conflicting apply by another manager succeeded: %s", r.stdout)
	}
	for _, want := range []string{`Apply failed with 1 conflict: conflict with "kubectl": .data.a`, "--force-conflicts"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("conflict message lacks %q:\n%s", want, r.stderr)
		}
	}
	kubectl(t, s, cm("2"), "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-")
	if data := configMapData(t, kubectl(t, s, "", "-n", "ssa", "get", "cm", "owned", "-o", "json")); data["a"] != "2" {
		t.Errorf("after --force-conflicts: data %v", data)
	}
	mf := kubectl(t, s, "", "-n", "ssa", "get", "cm", "owned", "--show-managed-fields", "-o", "jsonpath={range .metadata.managedFields[*]}{.manager}:{.operation} {end}")
	if !strings.Contains(mf, "kubectl:Apply") || !strings.Contains(mf, "other:Apply") {
		t.Errorf("managedFields managers %q", mf)
	}
	kubectl(t, s, cm("3"), "apply", "--server-side", "--field-manager=other", "--dry-run=server", "-f", "-")
	if data := configMapData(t, kubectl(t, s, "", "-n", "ssa", "get", "cm", "owned", "-o", "json")); data["a"] != "2" {
		t.Errorf("server dry-run changed the object: %v", data)
	}
}

// TestDiff: kubectl diff shows a pending change (exit 1) without making it,
// and nothing for an unchanged manifest (exit 0).
func TestDiff(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "diff")
	kubectl(t, s, configMapYAML("diff", "d", map[string]string{"a": "1"}), "apply", "-f", "-")
	r := run(t, s, "", nil, configMapYAML("diff", "d", map[string]string{"a": "2"}), "diff", "-f", "-")
	if r.code != 1 || !strings.Contains(r.stdout, `-  a: "1"`) || !strings.Contains(r.stdout, `+  a: "2"`) {
		t.Fatalf("diff of a change: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if data := configMapData(t, kubectl(t, s, "", "-n", "diff", "get", "cm", "d", "-o", "json")); data["a"] != "1" {
		t.Errorf("diff changed the object: %v", data)
	}
	r = run(t, s, "", nil, configMapYAML("diff", "d", map[string]string{"a": "1"}), "diff", "-f", "-")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("diff of the same manifest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, s, "", nil, configMapYAML("diff", "d", map[string]string{"a": "3"}), "diff", "--server-side", "-f", "-")
	if r.code != 1 || !strings.Contains(r.stdout, `+  a: "3"`) {
		t.Errorf("server-side diff: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestEdit: kubectl edit with a non-interactive editor.
func TestEdit(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "edit")
	kubectl(t, s, "", "-n", "edit", "create", "configmap", "e", "--from-literal=greeting=hello")
	editor := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/greeting: hello/greeting: bonjour/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, s, "", []string{"KUBE_EDITOR=" + editor, "EDITOR=" + editor}, "", "-n", "edit", "edit", "configmap/e")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "configmap/e edited" {
		t.Fatalf("edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := kubectl(t, s, "", "-n", "edit", "get", "cm", "e", "-o", "jsonpath={.data.greeting}"); got != "bonjour" {
		t.Errorf("after edit greeting=%q", got)
	}
	// An editor that changes nothing: kubectl says so and leaves the object.
	noop := filepath.Join(t.TempDir(), "noop.sh")
	if err := os.WriteFile(noop, []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = run(t, s, "", []string{"KUBE_EDITOR=" + noop}, "", "-n", "edit", "edit", "configmap/e")
	if r.code != 0 || !strings.Contains(r.stderr+r.stdout, "Edit cancelled, no changes made.") {
		t.Errorf("no-op edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

package parity_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestOldKubectl drives the API with Debian's kubectl 1.20, a client five
// years older than the API: legacy discovery, OpenAPI v2 validation,
// client-side apply.
func TestOldKubectl(t *testing.T) {
	if _, err := os.Stat(oldKubectl); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: hack/install-deps.sh unpacks it", oldKubectl)
		}
		t.Skipf("%s missing: run hack/install-deps.sh", oldKubectl)
	}
	s := startServer(t)
	old := func(stdin string, args ...string) string {
		t.Helper()
		r := run(t, s, oldKubectl, nil, stdin, args...)
		if r.code != 0 {
			t.Fatalf("kubectl 1.20 %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	if v := old("", "version", "--short"); !strings.Contains(v, "Server Version: v1.37.2+havre.") {
		t.Errorf("version: %s", v)
	}
	ns := fields(old("", "get", "namespaces"))
	if len(ns) < 5 || !slices.Equal(ns[0], []string{"NAME", "STATUS", "AGE"}) {
		t.Errorf("get namespaces: %q", ns)
	}
	old("", "create", "namespace", "old")
	manifest := configMapYAML("old", "cm", map[string]string{"a": "1"}) + "---\n" + deploymentYAML("old", "web", "web:1", 2)
	if got := lines(old(manifest, "apply", "-f", "-")); !slices.Equal(got, []string{"configmap/cm created", "deployment.apps/web created"}) {
		t.Errorf("apply: %q", got)
	}
	manifest = configMapYAML("old", "cm", map[string]string{"a": "2"}) + "---\n" + deploymentYAML("old", "web", "web:1", 2)
	if got := lines(old(manifest, "apply", "-f", "-")); !slices.Equal(got, []string{"configmap/cm configured", "deployment.apps/web unchanged"}) {
		t.Errorf("re-apply: %q", got)
	}
	old("", "-n", "old", "label", "deploy", "web", "tier=front")
	if got := old("", "-n", "old", "get", "deploy", "-l", "tier=front", "-o", "name"); strings.TrimSpace(got) != "deployment.apps/web" {
		t.Errorf("label selector: %q", got)
	}
	if got := old("", "-n", "old", "get", "cm", "cm", "-o", "jsonpath={.data.a}"); got != "2" {
		t.Errorf("jsonpath: %q", got)
	}
	res := fields(old("", "api-resources"))
	if !slices.ContainsFunc(res, func(r []string) bool {
		return slices.Equal(r, []string{"deployments", "deploy", "apps/v1", "true", "Deployment"})
	}) {
		t.Errorf("api-resources lacks deployments")
	}
	if got := strings.TrimSpace(old("", "-n", "old", "delete", "deploy", "web")); got != `deployment.apps "web" deleted` {
		t.Errorf("delete: %q", got)
	}
}

package parity_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOutputFormats: -o yaml, json, wide, name, jsonpath, custom-columns.
func TestOutputFormats(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "out")
	kubectl(t, s, configMapYAML("out", "o", map[string]string{"k": "v"})+"---\n"+deploymentYAML("out", "web", "web:1", 3), "apply", "-f", "-")

	yaml := kubectl(t, s, "", "-n", "out", "get", "cm", "o", "-o", "yaml")
	for _, want := range []string{"apiVersion: v1", "kind: ConfigMap", "  k: v", "  name: o", "  namespace: out", "  resourceVersion: ", "  uid: "} {
		if !strings.Contains(yaml, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, yaml)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(kubectl(t, s, "", "-n", "out", "get", "deploy", "web", "-o", "json")), &obj); err != nil || obj["kind"] != "Deployment" {
		t.Errorf("-o json: %v %v", obj["kind"], err)
	}
	var list map[string]any
	if err := json.Unmarshal([]byte(kubectl(t, s, "", "-n", "out", "get", "cm", "-o", "json")), &list); err != nil || list["kind"] != "List" {
		t.Errorf("list -o json kind %v: %v", list["kind"], err)
	}
	// Every namespace also holds the cluster CA's kube-root-ca.crt, once
	// its controller has run.
	named := slices.DeleteFunc(lines(kubectl(t, s, "", "-n", "out", "get", "cm,deploy", "-o", "name")), func(l string) bool { return l == "configmap/kube-root-ca.crt" })
	if got := named; !slices.Equal(got, []string{"configmap/o", "deployment.apps/web"}) {
		t.Errorf("-o name: %q", got)
	}
	if got := kubectl(t, s, "", "-n", "out", "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}/{.spec.template.spec.containers[*].name}"); got != "3/main" {
		t.Errorf("jsonpath: %q", got)
	}
	cc := fields(kubectl(t, s, "", "-n", "out", "get", "deploy", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,IMAGE:.spec.template.spec.containers[0].image"))
	if want := [][]string{{"NAME", "REPLICAS", "IMAGE"}, {"web", "3", "web:1"}}; len(cc) != 2 || !slices.Equal(cc[0], want[0]) || !slices.Equal(cc[1], want[1]) {
		t.Errorf("custom-columns: %q", cc)
	}
	wide := fields(kubectl(t, s, "", "-n", "out", "get", "deploy", "-o", "wide"))
	if len(wide) != 2 || !slices.Contains(wide[0], "IMAGES") || !slices.Contains(wide[1], "web:1") {
		t.Errorf("-o wide: %q", wide)
	}
}

// TestLabelAnnotatePatchReplace covers the in-place changes.
func TestLabelAnnotatePatchReplace(t *testing.T) {
	s := startServer(t)
	kubectl(t, s, "", "create", "namespace", "chg")
	kubectl(t, s, deploymentYAML("chg", "web", "web:1", 1), "apply", "-f", "-")
	n := []string{"-n", "chg"}
	do := func(args ...string) string { return strings.TrimSpace(kubectl(t, s, "", append(n, args...)...)) }

	if out := do("label", "deploy", "web", "tier=front"); out != "deployment.apps/web labeled" {
		t.Errorf("label: %q", out)
	}
	r := run(t, s, "", nil, "", append(n, "label", "deploy", "web", "tier=back")...)
	if r.code == 0 || !strings.Contains(r.stderr, "'tier' already has a value (front), and --overwrite is false") {
		t.Errorf("label without --overwrite: exit %d %s", r.code, r.stderr)
	}
	do("label", "deploy", "web", "tier=back", "--overwrite")
	if out := do("annotate", "deploy", "web", "note=hi"); out != "deployment.apps/web annotated" {
		t.Errorf("annotate: %q", out)
	}
	do("label", "deploy", "web", "tier-")
	if got := do("get", "deploy", "web", "-o", "jsonpath={.metadata.labels.tier}|{.metadata.annotations.note}"); got != "|hi" {
		t.Errorf("labels/annotations: %q", got)
	}

	if out := do("patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"replicas":4}}`); out != "deployment.apps/web patched" {
		t.Errorf("merge patch: %q", out)
	}
	do("patch", "deploy", "web", "--type=json", "-p", `[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"web:2"}]`)
	// Strategic merge adds a container, merging by name.
	do("patch", "deploy", "web", "--type=strategic", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"side:1"}]}}}}`)
	if got := do("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image}"); got != "4 web:2 side:1" && got != "4 side:1 web:2" {
		t.Errorf("after patches: %q", got)
	}
	if out := do("patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"replicas":4}}`); out != "deployment.apps/web patched (no change)" {
		t.Errorf("no-op patch: %q", out)
	}
	r = run(t, s, "", nil, "", append(n, "patch", "deploy", "web", "--type=json", "-p", `[{"op":"test","path":"/spec/replicas","value":9}]`)...)
	if r.code == 0 {
		t.Errorf("a failing JSON patch test op succeeded")
	}

	if out := strings.TrimSpace(kubectl(t, s, deploymentYAML("chg", "web", "web:3", 1), append(n, "replace", "-f", "-")...)); out != "deployment.apps/web replaced" {
		t.Errorf("replace: %q", out)
	}
	if got := do("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"); got != "web:3" {
		t.Errorf("after replace: %q", got)
	}
	out := kubectl(t, s, deploymentYAML("chg", "web", "web:4", 1), append(n, "replace", "--force", "-f", "-")...)
	// kubectl ≥ 1.33 names the namespace in its delete message.
	if want := []string{`deployment.apps "web" deleted from chg namespace`, "deployment.apps/web replaced"}; !slices.Equal(lines(out), want) {
		t.Errorf("replace --force: %q, want %q", lines(out), want)
	}
	if out := do("delete", "deploy", "web", "--cascade=background"); out != `deployment.apps "web" deleted from chg namespace` {
		t.Errorf("delete: %q", out)
	}
}

// TestDiscoveryCommands: api-resources, api-versions, version.
func TestDiscoveryCommands(t *testing.T) {
	s := startServer(t)
	res := fields(kubectl(t, s, "", "api-resources"))
	if len(res) == 0 || !slices.Equal(res[0], []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"}) {
		t.Fatalf("api-resources header: %q", res)
	}
	for _, want := range [][]string{
		{"deployments", "deploy", "apps/v1", "true", "Deployment"},
		{"pods", "po", "v1", "true", "Pod"},
		{"nodes", "no", "v1", "false", "Node"},
		{"events", "ev", "events.k8s.io/v1", "true", "Event"},
		{"leases", "coordination.k8s.io/v1", "true", "Lease"},
	} {
		if !slices.ContainsFunc(res, func(row []string) bool { return slices.Equal(row, want) }) {
			t.Errorf("api-resources lacks %q", want)
		}
	}
	versions := lines(kubectl(t, s, "", "api-versions"))
	for _, want := range []string{"v1", "apps/v1", "batch/v1", "autoscaling/v2", "events.k8s.io/v1", "networking.k8s.io/v1", "policy/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1"} {
		if !slices.Contains(versions, want) {
			t.Errorf("api-versions lacks %s: %q", want, versions)
		}
	}
	v := kubectl(t, s, "", "version")
	if !strings.Contains(v, "Server Version: v1.37.2+havre.") {
		t.Errorf("version:\n%s", v)
	}
}

// TestStrictValidation: with kubectl's default validation a typo in a
// manifest is rejected by the server, naming the field; --validate=warn
// creates the object and prints the warning.
func TestStrictValidation(t *testing.T) {
	s := startServer(t)
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: default\ndatta:\n  a: b\n"
	r := run(t, s, "", nil, bad, "create", "-f", "-")
	want := `ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "datta"`
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("strict create: exit %d, stderr:\n%s\nwant it to contain %q", r.code, r.stderr, want)
	}
	r = run(t, s, "", nil, bad, "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, `unknown field "datta"`) {
		t.Errorf("strict apply: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = run(t, s, "", nil, bad, "create", "--validate=warn", "-f", "-")
	if r.code != 0 || !strings.Contains(r.stderr, `Warning: unknown field "datta"`) {
		t.Errorf("--validate=warn: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

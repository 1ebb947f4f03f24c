package gatewayapi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", Module, err)
	}
	return strings.TrimSpace(string(out))
}

// TestEmbeddedAreUpstreams: the embedded manifests are, byte for byte,
// upstream's standard channel of the required version (run go generate
// after changing its version in go.mod).
func TestEmbeddedAreUpstreams(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := filepath.Glob(filepath.Join(moduleDir(t), "config", "crd", "standard", "*.yaml"))
	if err != nil || len(upstream) == 0 {
		t.Fatalf("upstream manifests %v, %v", upstream, err)
	}
	if len(files) != len(upstream) {
		t.Errorf("%d embedded manifests, upstream has %d", len(files), len(upstream))
	}
	for _, path := range upstream {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := files[filepath.Base(path)]; !bytes.Equal(got, want) {
			t.Errorf("%s differs from upstream's (go generate ./internal/network/gateway/gatewayapi)", filepath.Base(path))
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", Module).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); BundleVersion != want {
		t.Errorf("BundleVersion %q, go.mod requires %q (go generate ./internal/network/gateway/gatewayapi)", BundleVersion, want)
	}
}

func TestDefinitions(t *testing.T) {
	crds, err := Definitions()
	if err != nil {
		t.Fatal(err)
	}
	storage := map[string]string{
		"gatewayclasses": "v1", "gateways": "v1", "httproutes": "v1", "grpcroutes": "v1", "referencegrants": "v1beta1",
	}
	seen := map[string]bool{}
	for _, crd := range crds {
		if crd.Spec.Group != Group || crd.Annotations["gateway.networking.k8s.io/channel"] != "standard" ||
			crd.Annotations["gateway.networking.k8s.io/bundle-version"] != BundleVersion || crd.Annotations[AnnBundleVersion] != BundleVersion {
			t.Errorf("%s: group %s, annotations %v", crd.Name, crd.Spec.Group, crd.Annotations)
		}
		seen[crd.Spec.Names.Plural] = true
		if want, ok := storage[crd.Spec.Names.Plural]; ok {
			for _, v := range crd.Spec.Versions {
				if v.Storage && (v.Name != want || !v.Served) {
					t.Errorf("%s: storage version %s, want %s served", crd.Name, v.Name, want)
				}
			}
		}
	}
	for plural := range storage {
		if !seen[plural] {
			t.Errorf("no definition of %s", plural)
		}
	}
}

func TestPolicy(t *testing.T) {
	p, b, err := Policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != PolicyName || b.Name != PolicyName || b.Spec.PolicyName != PolicyName || len(p.Spec.Validations) != 2 {
		t.Errorf("policy %s (%d validations), binding %s of %s", p.Name, len(p.Spec.Validations), b.Name, b.Spec.PolicyName)
	}
	if len(b.Spec.ValidationActions) != 1 || b.Spec.ValidationActions[0] != "Deny" {
		t.Errorf("binding actions %v", b.Spec.ValidationActions)
	}
}

func TestHavreClass(t *testing.T) {
	c := HavreClass()
	if c.Name != "havre" || c.Spec.ControllerName != "havre.io/gateway-controller" {
		t.Errorf("class %+v", c)
	}
}

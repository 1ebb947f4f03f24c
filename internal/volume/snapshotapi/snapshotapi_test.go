package snapshotapi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// moduleDir is where the Go module cache holds Module (the build of this
// test downloaded it).
func moduleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", Module, err)
	}
	return strings.TrimSpace(string(out))
}

// TestEmbeddedAreUpstreams: the embedded manifests are, byte for byte,
// those the required version of the module publishes (run go generate
// after changing its version in go.mod).
func TestEmbeddedAreUpstreams(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := filepath.Glob(filepath.Join(moduleDir(t), "config", "crd", "snapshot.storage.k8s.io_*.yaml"))
	if err != nil || len(upstream) != 3 {
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
			t.Errorf("%s differs from upstream's (go generate ./internal/volume/snapshotapi)", filepath.Base(path))
		}
	}
}

func TestDefinitions(t *testing.T) {
	crds, err := Definitions()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]apiextensionsv1.ResourceScope{
		"volumesnapshotclasses.snapshot.storage.k8s.io":  apiextensionsv1.ClusterScoped,
		"volumesnapshotcontents.snapshot.storage.k8s.io": apiextensionsv1.ClusterScoped,
		"volumesnapshots.snapshot.storage.k8s.io":        apiextensionsv1.NamespaceScoped,
	}
	version := BundleVersion
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", Module).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); version != want || !strings.HasPrefix(version, "v8.") {
		t.Errorf("BundleVersion %q, go.mod requires %q (go generate ./internal/volume/snapshotapi)", version, want)
	}
	for _, crd := range crds {
		scope, ok := want[crd.Name]
		if !ok || crd.Spec.Scope != scope {
			t.Errorf("%s: scope %s", crd.Name, crd.Spec.Scope)
		}
		if crd.Annotations["api-approved.kubernetes.io"] == "" || crd.Annotations[AnnBundleVersion] != version {
			t.Errorf("%s: annotations %v", crd.Name, crd.Annotations)
		}
		served := false
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1" && v.Served && v.Storage && v.Subresources != nil && (v.Subresources.Status != nil) == (crd.Spec.Names.Kind != "VolumeSnapshotClass") {
				served = true
			}
		}
		if !served {
			t.Errorf("%s: v1 not the served storage version with its subresources", crd.Name)
		}
	}
}

func TestLocalClass(t *testing.T) {
	c := LocalClass()
	if c.Name != "local" || c.Driver != "havre.io/local" || c.DeletionPolicy != "Delete" || c.Annotations[AnnIsDefaultClass] != "true" {
		t.Errorf("class %+v", c)
	}
}

package images

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/havre/havre/internal/agent/runtime"
)

func TestBuildIsReproducible(t *testing.T) {
	spec := Spec{
		Files:      []File{{Path: "/usr/bin/app", Mode: 0o755, Data: []byte("#!x")}, {Path: "etc/app.conf", Data: []byte("a=b")}},
		Entrypoint: []string{"/usr/bin/app"},
		Env:        []string{"A=1"},
	}
	a, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two builds of one spec differ: %s, %s", da, db)
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Config.Entrypoint[0] != "/usr/bin/app" || cf.Config.Env[0] != "A=1" {
		t.Errorf("config %+v", cf)
	}
	layers, _ := a.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "usr/bin/app" && h.Mode != 0o755 {
			t.Errorf("app mode %o", h.Mode)
		}
	}
	if got, want := strings.Join(names, " "), "etc/ etc/app.conf usr/ usr/bin/ usr/bin/app"; got != want {
		t.Errorf("layer entries %q, want %q", got, want)
	}
}

func TestWriteArchive(t *testing.T) {
	img, err := PauseImage([]byte("binary"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, "havre.local/pause:x", img); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "havre.local/pause:x" {
		t.Errorf("archive manifest %+v", m)
	}
}

func TestPauseRef(t *testing.T) {
	if got := tagSafe("0.1.0-dev+abc/x"); got != "0.1.0-dev-abc-x" {
		t.Errorf("tagSafe = %q", got)
	}
	if !strings.HasPrefix(PauseRef(), "havre.local/pause:") {
		t.Errorf("PauseRef = %q", PauseRef())
	}
}

func TestPercent(t *testing.T) {
	if got := percent(5e6, 10e6); got != "5.0/10.0 MB (50%)" {
		t.Errorf("percent = %q", got)
	}
	if got := percent(5e6, 0); got != "5.0 MB" {
		t.Errorf("percent = %q", got)
	}
}

// TestPauseInContainerd imports the pause image into a private containerd,
// checks that a second EnsurePause does nothing, lists and removes it.
func TestPauseInContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	for _, bin := range []string{"containerd", "runc", "ctr"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (hack/install-deps.sh installs it)", bin)
		}
	}
	dir := t.TempDir()
	cfg := runtime.ContainerdConfig{
		Layout:       runtime.Layout{Dir: filepath.Join(dir, "c")},
		Snapshotter:  runtime.DetectSnapshotter(filepath.Join(dir, "c", "root")),
		SandboxImage: PauseRef(),
		CNIBinDir:    "/usr/lib/cni",
		CNIConfDir:   filepath.Join(dir, "net.d"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _, err := runtime.StartContainerd(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cri, err := runtime.Dial(c.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer cri.Close()
	im := Importer{Address: cfg.Layout.Socket(), Snapshotter: cfg.Snapshotter}
	start := time.Now()
	ref, err := EnsurePause(ctx, cri.Images, im, filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pause image %s ready in %v", ref, time.Since(start))
	start = time.Now()
	if _, err := EnsurePause(ctx, cri.Images, im, filepath.Join(dir, "cache")); err != nil {
		t.Fatal(err)
	}
	t.Logf("second EnsurePause took %v", time.Since(start))

	list, err := List(ctx, cri.Images)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || first(list[0].Tags) != ref || list[0].Size == 0 {
		t.Fatalf("images %+v, want just %s", list, ref)
	}

	// An OCI archive (an OCI layout, tarred) imports too.
	ociTar := filepath.Join(dir, "oci.tar")
	writeOCIArchive(t, ociTar, "havre.local/oci:v1")
	var progress bytes.Buffer
	refs, err := im.ImportFile(ctx, ociTar, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0] != "havre.local/oci:v1" || !strings.Contains(progress.String(), "imported havre.local/oci:v1") {
		t.Errorf("OCI import: %v\n%s", refs, progress.String())
	}
	if err := Remove(ctx, cri.Images, "havre.local/oci:v1"); err != nil {
		t.Errorf("removing the OCI image: %v", err)
	}
	if err := Remove(ctx, cri.Images, ref); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, cri.Images, ref); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("second Remove: %v, want not found", err)
	}
}

// writeOCIArchive writes a small image as a tarred OCI layout naming it ref.
func writeOCIArchive(t *testing.T, path, ref string) {
	t.Helper()
	img, err := Build(Spec{Files: []File{{Path: "/hello", Data: []byte("hi")}}, Entrypoint: []string{"/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref, "io.containerd.image.name": ref,
	})); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

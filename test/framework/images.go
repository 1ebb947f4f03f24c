package framework

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	imagesMu sync.Mutex
	builtImg = map[string]string{} // dir|ref → archive
)

// writeAppletLinks adds to an image layer /tmp and, for every name listed in
// the program's APPLETS file (one a line), a link /bin/<name> to the
// program, which then acts as that command when called by that name.
func writeAppletLinks(tw *tar.Writer, dir, program string) error {
	for _, d := range []tar.Header{{Name: "tmp/", Mode: 0o1777}, {Name: "bin/", Mode: 0o755}} {
		d.Typeflag = tar.TypeDir
		if err := tw.WriteHeader(&d); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "APPLETS"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(data)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + name, Linkname: "/" + program, Mode: 0o777}); err != nil {
			return err
		}
	}
	return nil
}

// BuildImage builds the Go program in dir (relative to the module root, as
// "test/images/web") into a static binary and packs it as the only file,
// /<base name of dir>, of a single-layer linux image tagged ref, whose
// entrypoint it is. It returns the path of the image as a docker archive
// (what `havre image import` takes). Each image is built once per test
// process.
func BuildImage(t testing.TB, dir, ref string) string {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	key := dir + "|" + ref
	if p, ok := builtImg[key]; ok {
		return p
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.MkdirTemp("", "havre-e2e-image-")
	if err != nil {
		t.Fatal(err)
	}
	registerTempDir(out)
	base := filepath.Base(dir)
	bin := filepath.Join(out, base)
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./"+strings.TrimPrefix(dir, "./"))
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	build.WaitDelay = 5 * time.Second
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, output)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: base, Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := writeAppletLinks(tw, filepath.Join(root, dir), base); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/" + base}
	cf.Config.Env = []string{"PATH=/bin:/"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(out, base+".tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	builtImg[key] = archive
	return archive
}

// ImportImage imports an image archive into the server's node agent with
// `havre image import`.
func (s *Server) ImportImage(t testing.TB, archive string) {
	t.Helper()
	s.MustHavre(t, "image", "import", "--data-dir", s.dataDir, archive)
}

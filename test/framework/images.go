package framework

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/havre/havre/internal/imagebuild"
)

var (
	imagesMu sync.Mutex
	builtImg = map[string]string{} // dir|ref → archive
)

// BuildImage builds the Go program in dir (relative to the module root, as
// "test/images/web") into an image tagged ref with imagebuild.Build and
// returns the path of its archive (what `havre image import` takes). Each
// image is built once per test process.
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
	archive, err := imagebuild.Build(context.Background(), root, dir, ref, out)
	if err != nil {
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

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

// PostgresImage builds (once per test process) an image of Debian's
// PostgreSQL server from this machine's packages (imagebuild.Postgres),
// started by test/images/postgres, which initialises $PGDATA on first
// start and runs as user 999. `/postgres psql -c SQL` in the container
// runs psql.
func PostgresImage(t testing.TB, ref string) string {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	key := "postgres|" + ref
	if p, ok := builtImg[key]; ok {
		return p
	}
	host, err := imagebuild.Postgres()
	if err != nil {
		t.Skip(err)
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
	archive, err := imagebuild.BuildWithHost(context.Background(), root, "test/images/postgres", ref, out, host)
	if err != nil {
		t.Fatal(err)
	}
	builtImg[key] = archive
	return archive
}

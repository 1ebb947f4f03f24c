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
	return HostImage(t, "test/images/postgres", ref, imagebuild.Postgres)
}

// HostImage builds (once per test process) the Go program in dir into an
// image tagged ref with the files host takes from this machine's Debian
// packages (imagebuild.Postgres, imagebuild.Nginx). The test is skipped
// when the package is not installed here.
func HostImage(t testing.TB, dir, ref string, host func() (imagebuild.Host, error)) string {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	key := "host|" + dir + "|" + ref
	if p, ok := builtImg[key]; ok {
		return p
	}
	files, err := host()
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
	archive, err := imagebuild.BuildWithHost(context.Background(), root, dir, ref, out, files)
	if err != nil {
		t.Fatal(err)
	}
	builtImg[key] = archive
	return archive
}

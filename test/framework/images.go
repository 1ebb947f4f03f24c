package framework

import (
	"context"
	"os"
	"path/filepath"
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
// PostgreSQL server from this machine's packages, started by
// test/images/postgres, which initialises $PGDATA on first start and runs
// as user 999. `/postgres psql -c SQL` in the container runs psql.
func PostgresImage(t testing.TB, ref string) string {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	key := "postgres|" + ref
	if p, ok := builtImg[key]; ok {
		return p
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*")
	if len(versions) == 0 {
		t.Skip("PostgreSQL is not installed (Debian's postgresql package; hack/install-deps.sh installs it)")
	}
	version := filepath.Base(versions[len(versions)-1])
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.MkdirTemp("", "havre-e2e-image-")
	if err != nil {
		t.Fatal(err)
	}
	registerTempDir(out)
	archive, err := imagebuild.BuildWithHost(context.Background(), root, "test/images/postgres", ref, out, imagebuild.Host{
		// initdb runs programs through popen, hence a shell.
		Paths: []string{"/usr/bin/dash", "/usr/lib/postgresql/" + version, "/usr/share/postgresql/" + version, "/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/UTC"},
		Skip:  []string{"/usr/lib/postgresql/" + version + "/lib/bitcode", "/usr/share/postgresql/" + version + "/man"},
		Files: map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
			"/etc/group":  "root:x:0:\npostgres:x:999:\n",
		},
		Links: map[string]string{"/bin/sh": "/usr/bin/dash"},
		Env:   []string{"TZ=UTC", "PGDATA=/var/lib/postgresql/data/pgdata"},
	})
	if err != nil {
		t.Fatal(err)
	}
	builtImg[key] = archive
	return archive
}

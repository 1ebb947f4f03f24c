// Command postgres is the entrypoint of the e2e tests' PostgreSQL image:
// Debian's PostgreSQL server (copied from this machine by
// imagebuild.BuildWithHost) started on $PGDATA, which it initialises on
// first start — what the official image's entrypoint does, reduced to what
// the tests need. `postgres psql ARGS` runs psql on the server's socket.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "postgres:", err)
		os.Exit(1)
	}
}

func run() error {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(bins) == 0 {
		return fmt.Errorf("no /usr/lib/postgresql/*/bin in the image")
	}
	bin := bins[len(bins)-1]
	if len(os.Args) > 1 && os.Args[1] == "psql" {
		args := append([]string{filepath.Join(bin, "psql"), "-h", "/tmp", "-U", "postgres", "-v", "ON_ERROR_STOP=1"}, os.Args[2:]...)
		return syscall.Exec(filepath.Join(bin, "psql"), args, os.Environ())
	}
	if os.Getuid() == 0 {
		return fmt.Errorf("PostgreSQL does not run as root: give the container a securityContext.runAsUser (999 is the image's postgres user)")
	}
	data := os.Getenv("PGDATA")
	if data == "" {
		data = "/var/lib/postgresql/data/pgdata"
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); os.IsNotExist(err) {
		fmt.Printf("initialising a database cluster in %s\n", data)
		if err := os.MkdirAll(data, 0o700); err != nil {
			return err
		}
		initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
		initdb.Stdout, initdb.Stderr = os.Stdout, os.Stderr
		if err := initdb.Run(); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
		hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = hba.WriteString("host all all 0.0.0.0/0 trust\n")
		if cerr := hba.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// As the official image does at every start: a volume's fsGroup
	// ownership (group rwx, setgid) is more than PostgreSQL accepts.
	if err := os.Chmod(data, 0o700); err != nil {
		return err
	}
	fmt.Printf("starting PostgreSQL on %s\n", data)
	// argv[0] is a path: postgres finds its installation from it.
	args := []string{filepath.Join(bin, "postgres"), "-D", data, "-c", "listen_addresses=*", "-c", "unix_socket_directories=/tmp"}
	return syscall.Exec(filepath.Join(bin, "postgres"), append(args, os.Args[1:]...), os.Environ())
}

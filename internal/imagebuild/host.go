package imagebuild

import (
	"archive/tar"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Host is what BuildWithHost adds to a Go program's image from this
// machine: files of Debian's packages (a real PostgreSQL, nginx, Python),
// with the shared libraries their programs need.
type Host struct {
	// Paths are files or directories of this machine, copied to the same
	// paths in the image (directories recursively, symlinks as symlinks).
	Paths []string
	// Skip leaves out the paths under these prefixes.
	Skip []string
	// Files are written as given (path → content), e.g. /etc/passwd.
	Files map[string]string
	// Links are symlinks written as given (path → target), e.g. /bin/sh.
	Links map[string]string
	// Env is added to the image's environment.
	Env []string
}

// libDirs are where the dynamic loader finds libraries on this machine,
// in its order (Debian's multiarch directories first).
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib", "/lib", "/lib64"}

// BuildWithHost is Build with host files added to the image's layer: every
// ELF program or library among them brings, transitively, the libraries
// it needs (DT_NEEDED, resolved in the loader's directories and the file's
// RUNPATH) and its interpreter.
func BuildWithHost(ctx context.Context, moduleRoot, dir, ref, outDir string, host Host) (string, error) {
	return build(ctx, moduleRoot, dir, ref, outDir, func(tw *tar.Writer) error { return host.write(tw) }, host.Env)
}

func (h Host) write(tw *tar.Writer) error {
	// Build has written /bin and /tmp.
	w := &hostWriter{tw: tw, done: map[string]bool{"/bin": true, "/tmp": true}, skip: h.Skip}
	for _, p := range h.Paths {
		if err := w.tree(p); err != nil {
			return err
		}
	}
	for len(w.elves) > 0 {
		f := w.elves[0]
		w.elves = w.elves[1:]
		if err := w.libsOf(f); err != nil {
			return err
		}
	}
	links := make([]string, 0, len(h.Links))
	for n := range h.Links {
		links = append(links, n)
	}
	slices.Sort(links)
	for _, n := range links {
		if err := w.parents(n); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(n, "/"), Linkname: h.Links[n], Mode: 0o777}); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(h.Files))
	for n := range h.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.parents(n); err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(n, "/"), Mode: 0o644, Size: int64(len(h.Files[n]))}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(h.Files[n])); err != nil {
			return err
		}
	}
	return nil
}

type hostWriter struct {
	tw    *tar.Writer
	done  map[string]bool
	skip  []string
	elves []string // ELF files written whose libraries are not yet added
}

func (w *hostWriter) skipped(p string) bool {
	for _, s := range w.skip {
		if p == s || strings.HasPrefix(p, strings.TrimSuffix(s, "/")+"/") {
			return true
		}
	}
	return false
}

// parents adds the directories above p.
func (w *hostWriter) parents(p string) error {
	var dirs []string
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		dirs = append(dirs, d)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if w.done[d] {
			continue
		}
		w.done[d] = true
		if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	return nil
}

// tree copies a file or directory of the host.
func (w *hostWriter) tree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if w.skipped(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return w.file(p, p)
	})
}

// file writes the host's file src at path dst of the image (a symlink
// stays one, and brings its target).
func (w *hostWriter) file(dst, src string) error {
	if w.done[dst] {
		return nil
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := w.parents(dst); err != nil {
		return err
	}
	w.done[dst] = true
	name := strings.TrimPrefix(dst, "/")
	switch {
	case fi.IsDir():
		return w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(fi.Mode().Perm())})
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}); err != nil {
			return err
		}
		abs := target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(dst), target)
		}
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return fmt.Errorf("%s: dangling symlink: %w", src, err)
		}
		return w.file(abs, real)
	case fi.Mode().IsRegular():
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(fi.Mode().Perm()), Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := w.tw.Write(data); err != nil {
			return err
		}
		if len(data) > 4 && string(data[:4]) == elf.ELFMAG {
			w.elves = append(w.elves, src)
		}
		return nil
	}
	return nil // sockets, devices: not for images
}

// libsOf adds the interpreter and the libraries an ELF file needs.
func (w *hostWriter) libsOf(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return err
			}
			interp := strings.TrimRight(string(b), "\x00")
			if err := w.file(interp, interp); err != nil {
				return fmt.Errorf("interpreter of %s: %w", path, err)
			}
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dirs := slices.Clone(libDirs)
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		rp, _ := f.DynString(tag)
		for _, s := range rp {
			for _, d := range strings.Split(s, ":") {
				dirs = append([]string{strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(path))}, dirs...)
			}
		}
	}
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			p := filepath.Join(d, lib)
			if _, err := os.Stat(p); err == nil {
				found = p
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, found in none of %v: install the package that has it", path, lib, dirs)
		}
		if err := w.file(found, found); err != nil {
			return err
		}
	}
	return nil
}

// Postgres is what test/images/postgres needs from this machine: the
// newest PostgreSQL server of Debian's packages installed here (and a
// shell: initdb runs programs through popen), with a postgres user 999.
func Postgres() (Host, error) {
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(versions) == 0 {
		return Host{}, fmt.Errorf("PostgreSQL is not installed: apt-get install postgresql (hack/install-deps.sh does)")
	}
	version := filepath.Base(filepath.Dir(versions[len(versions)-1]))
	lib, share := "/usr/lib/postgresql/"+version, "/usr/share/postgresql/"+version
	return Host{
		Paths: []string{"/usr/bin/dash", lib, share, "/usr/share/zoneinfo/Etc/UTC", "/usr/share/zoneinfo/UTC"},
		Skip:  []string{lib + "/lib/bitcode", share + "/man"},
		Links: map[string]string{"/bin/sh": "/usr/bin/dash"},
		Files: map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
			"/etc/group":  "root:x:0:\npostgres:x:999:\n",
		},
		Env: []string{"TZ=UTC", "PGDATA=/var/lib/postgresql/data/pgdata"},
	}, nil
}

// Nginx is what test/images/frontend needs from this machine: Debian's
// nginx and its MIME types, with an unprivileged user 101 to run as.
func Nginx() (Host, error) {
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		return Host{}, fmt.Errorf("nginx is not installed: apt-get install nginx (hack/install-deps.sh does, without starting it)")
	}
	return Host{
		Paths: []string{"/usr/sbin/nginx", "/etc/nginx/mime.types"},
		Files: map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/tmp:/bin/sh\n",
			"/etc/group":  "root:x:0:\nnginx:x:101:\n",
		},
	}, nil
}

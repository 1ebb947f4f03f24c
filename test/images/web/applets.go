package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The image links /bin/<name> to this program for every applet below, so
// that `kubectl exec` and `kubectl cp` (which runs tar) have commands to
// run. Each is the small subset of its namesake the tests use.
var applets = map[string]func(args []string) error{
	"cat":   cat,
	"df":    df,
	"echo":  func(args []string) error { _, err := fmt.Println(strings.Join(args, " ")); return err },
	"fill":  fill,
	"ls":    ls,
	"sleep": sleepApplet,
	"stat":  stat,
	"tar":   tarApplet,
	"true":  func([]string) error { return nil },
	"write": write,
}

// write FILE TEXT... writes the text (and a newline) to FILE, creating its
// directories, and syncs it.
func write(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: write FILE TEXT...")
	}
	if err := os.MkdirAll(filepath.Dir(args[0]), 0o755); err != nil {
		return err
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, strings.Join(args[1:], " "))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fill FILE MIB writes MIB mebibytes to FILE and syncs them: it fails (with
// the kernel's "no space left on device" or "disk quota exceeded") where a
// volume's size is enforced.
func fill(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: fill FILE MIB")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for range n {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	return f.Sync()
}

// stat PATH prints the path's owner, group and permission bits, as
// "UID GID MODE" (MODE in octal, with setgid as 2000).
func stat(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: stat PATH")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(args[0], &st); err != nil {
		return err
	}
	_, err := fmt.Printf("%d %d %o\n", st.Uid, st.Gid, st.Mode&0o7777)
	return err
}

// df PATH prints the size and the free bytes of the filesystem at PATH.
func df(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: df PATH")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(args[0], &st); err != nil {
		return err
	}
	_, err := fmt.Printf("%d %d\n", st.Blocks*uint64(st.Bsize), st.Bavail*uint64(st.Bsize))
	return err
}

// runApplet runs the applet the program was called as, if any, and exits.
func runApplet() {
	name := filepath.Base(os.Args[0])
	fn, ok := applets[name]
	if !ok {
		return
	}
	if err := fn(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func cat(args []string) error {
	if len(args) == 0 {
		_, err := io.Copy(os.Stdout, os.Stdin)
		return err
	}
	for _, a := range args {
		f, err := os.Open(a)
		if err != nil {
			return err
		}
		_, err = io.Copy(os.Stdout, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func ls(args []string) error {
	if len(args) == 0 {
		args = []string{"."}
	}
	for _, a := range args {
		entries, err := os.ReadDir(a)
		if err != nil {
			return err
		}
		for _, e := range entries {
			fmt.Println(e.Name())
		}
	}
	return nil
}

func sleepApplet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: sleep SECONDS")
	}
	s, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return err
	}
	time.Sleep(time.Duration(s * float64(time.Second)))
	return nil
}

// tarApplet creates (c) an archive of paths on stdout, or extracts (x) one
// from stdin into -C DIR; f must be "-". Other GNU tar options kubectl cp
// passes (m, --no-same-owner, --no-same-permissions) are accepted.
func tarApplet(args []string) error {
	var create, extract bool
	dir := "."
	var paths []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-C":
			if i+1 >= len(args) {
				return errors.New("-C needs a directory")
			}
			dir = args[i+1]
			i++
		case strings.HasPrefix(a, "--"):
		case i == 0 || strings.HasPrefix(a, "-"):
			for _, c := range strings.TrimPrefix(a, "-") {
				switch c {
				case 'c':
					create = true
				case 'x':
					extract = true
				case 'f':
					if i+1 >= len(args) || args[i+1] != "-" {
						return errors.New("only f - (standard input or output) is supported")
					}
					i++
				case 'm', 'v', 'p', 'o':
				default:
					return fmt.Errorf("unsupported option %q", c)
				}
			}
		default:
			paths = append(paths, a)
		}
	}
	switch {
	case create:
		return tarCreate(os.Stdout, paths)
	case extract:
		return tarExtract(os.Stdin, dir)
	}
	return errors.New("one of c or x is needed")
}

func tarCreate(out io.Writer, paths []string) error {
	tw := tar.NewWriter(out)
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(path); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			hdr.Name = strings.TrimPrefix(filepath.ToSlash(path), "/")
			if d.IsDir() {
				hdr.Name += "/"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, f)
				f.Close()
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarExtract(in io.Reader, dir string) error {
	tr := tar.NewReader(in)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(hdr.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		}
	}
}

// addLogHandler serves /log?line=L[&stream=stderr]: the program writes L
// to its standard output (or error), for tests of container logs.
func addLogHandler(mux *http.ServeMux) {
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		out := os.Stdout
		if r.URL.Query().Get("stream") == "stderr" {
			out = os.Stderr
		}
		fmt.Fprintln(out, r.URL.Query().Get("line"))
		fmt.Fprintln(w, "ok")
	})
}

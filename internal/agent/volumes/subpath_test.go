package volumes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestValidateSubPath(t *testing.T) {
	for _, tc := range []struct {
		sub, err string
	}{
		{"a/b", ""},
		{"a/..b/c", ""},
		{"/etc", "must not be an absolute path"},
		{"..", "must not contain '..'"},
		{"a/../../b", "must not contain '..'"},
	} {
		err := ValidateSubPath(tc.sub)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v, want %q", tc.sub, err, tc.err)
		}
	}
}

func TestOpenSubPath(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "vol")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "in/deep"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Chmod(root, 0o2775); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"abs":       outside,                 // absolute: leaves the volume
		"up":        "../outside",            // relative, above the root
		"in/up2":    "../../outside",         // deeper, above the root
		"inside":    "in/deep",               // stays inside
		"in/sibl":   "../file",               // stays inside
		"proc":      "/proc/self/root",       // a magic link, outside
		"dangling":  "nowhere",               // inside, missing
		"in/deep/x": "../../../vol/in/deep/", // leaves and comes back: still refused
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		sub  string
		want string // path it resolves to, relative to root; "" for an error
		err  string
	}{
		{sub: "in/deep", want: "in/deep"},
		{sub: "file", want: "file"},
		{sub: "", want: "."},
		{sub: "inside", want: "in/deep"},
		{sub: "in/sibl", want: "file"},
		{sub: "new/dir", want: "new/dir"},
		{sub: "inside/made", want: "in/deep/made"},
		{sub: "abs", err: "not within volume path"},
		{sub: "abs/sub", err: "not within volume path"},
		{sub: "up", err: "not within volume path"},
		{sub: "in/up2", err: "not within volume path"},
		{sub: "proc", err: "not within volume path"},
		{sub: "in/deep/x", err: "not within volume path"},
		{sub: "/etc", err: "absolute"},
		{sub: "in/../..", err: "'..'"},
	} {
		t.Run(tc.sub, func(t *testing.T) {
			f, err := OpenSubPath(root, tc.sub)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					if f != nil {
						f.Close()
					}
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got, want unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &got); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(filepath.Join(root, tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if got.Ino != want.Ino || got.Dev != want.Dev {
				t.Errorf("resolved to another file than %s", tc.want)
			}
		})
	}
	// Made directories take the root's mode, setgid included.
	fi, err := os.Stat(filepath.Join(root, "new/dir"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o775 || fi.Mode()&os.ModeSetgid == 0 {
		t.Errorf("made directory mode %v, want the root's (drwxrwsr-x)", fi.Mode())
	}
	// Nothing was made outside.
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("created %v outside the volume", entries)
	}
}

func TestBindSubPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	base := t.TempDir()
	root := filepath.Join(base, "vol")
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ sub, target string }{
		{"d", filepath.Join(base, "subpaths/v/c/0")},
		{"f", filepath.Join(base, "subpaths/v/c/1")},
		{"d", filepath.Join(base, "subpaths/v/c/0")}, // again: replaces the mount
	} {
		if err := BindSubPath(root, tc.sub, tc.target); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for unix.Unmount(tc.target, unix.MNT_DETACH) == nil {
			}
		})
	}
	if err := os.WriteFile(filepath.Join(base, "subpaths/v/c/0/through"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "d/through")); err != nil {
		t.Errorf("a file written through the subPath mount is not in the volume: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(base, "subpaths/v/c/1")); err != nil || string(data) != "file" {
		t.Errorf("file subPath mount reads %q, %v", data, err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "esc")); err != nil {
		t.Fatal(err)
	}
	err := BindSubPath(root, "esc", filepath.Join(base, "subpaths/v/c/2"))
	if err == nil || errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "not within volume path") {
		t.Errorf("escaping subPath: %v", err)
	}
}

package volumes

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

func TestSetOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to another needs root")
	}
	always, onMismatch := corev1.FSGroupChangeAlways, corev1.FSGroupChangeOnRootMismatch
	const gid = 4321
	type state struct {
		gid  uint32
		mode uint32 // permission bits and setgid
	}
	for _, tc := range []struct {
		name       string
		policy     *corev1.PodFSGroupChangePolicy
		readOnly   bool
		rootGiven  bool // the root is the group's already
		wantWalked bool
		wantRoot   state
		wantDir    state
		wantFile   state
	}{
		{name: "default is Always", wantWalked: true,
			wantRoot: state{gid, 0o2770}, wantDir: state{gid, 0o2770}, wantFile: state{gid, 0o660}},
		{name: "Always", policy: &always, rootGiven: true, wantWalked: true,
			wantRoot: state{gid, 0o2770}, wantDir: state{gid, 0o2770}, wantFile: state{gid, 0o660}},
		{name: "OnRootMismatch, root not given", policy: &onMismatch, wantWalked: true,
			wantRoot: state{gid, 0o2770}, wantDir: state{gid, 0o2770}, wantFile: state{gid, 0o660}},
		{name: "OnRootMismatch, root given", policy: &onMismatch, rootGiven: true,
			wantRoot: state{gid, 0o2770}, wantDir: state{0, 0o700}, wantFile: state{0, 0o600}},
		{name: "read-only", readOnly: true, wantWalked: true,
			wantRoot: state{gid, 0o2750}, wantDir: state{gid, 0o2750}, wantFile: state{gid, 0o640}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "vol")
			outside := filepath.Join(base, "outside")
			for _, d := range []string{filepath.Join(root, "dir"), outside} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{filepath.Join(root, "dir/file"), filepath.Join(outside, "secret")} {
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range []string{root, filepath.Join(root, "dir"), filepath.Join(root, "dir/file")} {
				if err := os.Chmod(p, os.FileMode(0o700)); err != nil && p != filepath.Join(root, "dir/file") {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(filepath.Join(root, "dir/file"), 0o600); err != nil {
				t.Fatal(err)
			}
			// A link out of the volume is not followed.
			if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "dir/link")); err != nil {
				t.Fatal(err)
			}
			if tc.rootGiven {
				if err := os.Chown(root, 0, gid); err != nil {
					t.Fatal(err)
				}
				if err := unix.Chmod(root, 0o2770); err != nil {
					t.Fatal(err)
				}
			}
			walked, err := SetOwnership(root, new(int64(gid)), tc.policy, tc.readOnly)
			if err != nil {
				t.Fatal(err)
			}
			if walked != tc.wantWalked {
				t.Errorf("walked %v, want %v", walked, tc.wantWalked)
			}
			check := func(p string, want state) {
				t.Helper()
				var st unix.Stat_t
				if err := unix.Stat(p, &st); err != nil {
					t.Fatal(err)
				}
				if got := (state{st.Gid, st.Mode & 0o7777}); got != want {
					t.Errorf("%s: group %d mode %o, want group %d mode %o", p, got.gid, got.mode, want.gid, want.mode)
				}
			}
			check(root, tc.wantRoot)
			check(filepath.Join(root, "dir"), tc.wantDir)
			check(filepath.Join(root, "dir/file"), tc.wantFile)
			check(filepath.Join(outside, "secret"), state{0, 0o600})
			if NeedsOwnership(root, gid, tc.readOnly) {
				t.Error("the root still needs ownership")
			}
		})
	}
	if walked, err := SetOwnership(t.TempDir(), nil, nil, false); walked || err != nil {
		t.Errorf("no fsGroup: walked %v, %v", walked, err)
	}
}

package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenVolumes(t *testing.T) {
	tests := []struct {
		name, dir, backing string
		wantDir, wantErr   string
	}{
		{name: "default", backing: "dir", wantDir: "volumes"},
		{name: "own dir", dir: "elsewhere", backing: "dir", wantDir: "elsewhere"},
		{name: "btrfs asked on another filesystem", backing: "btrfs", wantErr: "is not on btrfs"},
		{name: "unknown", backing: "zfs", wantErr: `--volume-backing "zfs"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			if tc.backing == "btrfs" {
				var st unix.Statfs_t
				if err := unix.Statfs(dataDir, &st); err != nil || st.Type == unix.BTRFS_SUPER_MAGIC {
					t.Skip("the test directory is on btrfs")
				}
			}
			o := Options{DataDir: dataDir, VolumeBacking: tc.backing}
			if tc.dir != "" {
				o.VolumesDir = filepath.Join(dataDir, tc.dir)
			}
			a := &Agent{opts: o}
			err := a.openVolumes(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("openVolumes: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := a.VolumeBacking()
			if b == nil || b.Kind() != tc.backing {
				t.Fatalf("VolumeBacking() = %v, want a %s backing", b, tc.backing)
			}
			if got, want := b.Path("pvc-1"), filepath.Join(dataDir, tc.wantDir, "volumes", "pvc-1"); got != want {
				t.Errorf("volume path %s, want %s", got, want)
			}
		})
	}
}

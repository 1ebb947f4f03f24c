package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	root := testFS(t, "ext4", 256*mib)
	tests := []struct {
		want     string
		wantKind string
		wantErr  string
	}{
		{want: "auto", wantKind: "dir"},
		{want: "", wantKind: "dir"},
		{want: "dir", wantKind: "dir"},
		{want: "loop", wantKind: "loop"},
		{want: "btrfs", wantErr: "is not on btrfs"},
		{want: "xfs", wantErr: "is not on xfs"},
		{want: "zfs", wantErr: `--volume-backing "zfs": want auto, btrfs, xfs, loop or dir`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			b, err := Detect(filepath.Join(root, "v-"+tc.want), tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Detect: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind() != tc.wantKind {
				t.Errorf("Kind() = %s, want %s", b.Kind(), tc.wantKind)
			}
		})
	}
}

// TestLoopReattach: after a restart (the mounts gone) Reattach mounts the
// loop volumes again, with their data.
func TestLoopReattach(t *testing.T) {
	ctx := context.Background()
	b := newTestBacking(t, "loop", 512*mib)
	p, err := b.Create(ctx, "pvc-a", 32*mib)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "file"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(filepath.Dir(p))
	if err := Unmount(root); err != nil { // what `havre agent reset` does
		t.Fatal(err)
	}
	if _, ok, err := mounted(p); err != nil || ok {
		t.Fatalf("still mounted after Unmount: %v, %v", ok, err)
	}
	if _, _, err := b.Usage(ctx, "pvc-a"); err == nil {
		t.Error("Usage of an unmounted loop volume succeeded")
	}
	if err := Reattach(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(p, "file")); got != "kept" {
		t.Errorf("after Reattach the file holds %q", got)
	}
	if err := Reattach(ctx, b); err != nil {
		t.Errorf("Reattach of mounted volumes: %v", err)
	}
	if err := b.Delete(ctx, "pvc-a"); err != nil {
		t.Fatal(err)
	}
}

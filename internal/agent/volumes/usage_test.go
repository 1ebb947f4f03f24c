package volumes

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMeasure(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i) | 1 // not sparse
	}
	if err := os.WriteFile(filepath.Join(root, "d/big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "d/big"), filepath.Join(root, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	u, err := Measure(root)
	if err != nil {
		t.Fatal(err)
	}
	// root, d, big (once), link.
	if u.InodesUsed != 4 {
		t.Errorf("inodes used %d, want 4", u.InodesUsed)
	}
	if u.UsedBytes < 1<<20 || u.UsedBytes > 2<<20 {
		t.Errorf("used %d bytes, want about 1 MiB (the hard link counted once)", u.UsedBytes)
	}
	if u.CapacityBytes == 0 || u.AvailableBytes > u.CapacityBytes || u.Inodes == 0 && u.InodesFree != 0 {
		t.Errorf("filesystem figures %+v", u)
	}
	if _, err := Measure(filepath.Join(root, "none")); err == nil {
		t.Error("a missing directory measured")
	}
}

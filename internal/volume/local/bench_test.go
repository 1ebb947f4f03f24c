package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkSnapshot takes snapshots of a volume holding 1 GiB of data.
func BenchmarkSnapshot(b *testing.B) {
	for _, kind := range []string{"dir", "btrfs", "xfs", "loop"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			backing := newTestBacking(b, kind, 4<<30)
			p, err := backing.Create(ctx, "pvc-bench", 1<<30+64*mib)
			if err != nil {
				b.Fatal(err)
			}
			if err := fill(filepath.Join(p, "data"), 1<<30); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(1 << 30)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("snap-%d", i)
				if _, err := backing.Snapshot(ctx, "pvc-bench", id, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := backing.DeleteSnapshot(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSnapshotCopyBaseline is what the dir backing's snapshot is
// compared with: `cp -a` of the same 1 GiB volume on the same kind of
// filesystem (ext4), plus a sync, since a snapshot is durable once taken.
func BenchmarkSnapshotCopyBaseline(b *testing.B) {
	ctx := context.Background()
	backing := newTestBacking(b, "dir", 4<<30)
	p, err := backing.Create(ctx, "pvc-bench", 1<<30+64*mib)
	if err != nil {
		b.Fatal(err)
	}
	if err := fill(filepath.Join(p, "data"), 1<<30); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 30)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(filepath.Dir(p), fmt.Sprintf("cp-%d", i))
		if out, err := exec.Command("cp", "-a", p, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, out)
		}
		if out, err := exec.Command("sync", "-f", dst).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v: %s", err, out)
		}
		b.StopTimer()
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkLoopCreate creates (and, untimed, deletes) 1 GiB loop volumes.
func BenchmarkLoopCreate(b *testing.B) {
	ctx := context.Background()
	backing := newTestBacking(b, "loop", 4<<30)
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("pvc-%d", i)
		if _, err := backing.Create(ctx, id, 1<<30); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := backing.Delete(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

package encryption

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/havre/havre/internal/storage"
)

// BenchmarkGet is a store Get of a 1 KiB Secret value, bare and through
// each provider: `go test ./internal/storage/encryption -run '^$' -bench Get`.
func BenchmarkGet(b *testing.B) {
	for _, p := range []string{"off", "identity", "secretbox", "aescbc", "aesgcm"} {
		b.Run(p, func(b *testing.B) {
			ctx := context.Background()
			raw := openBolt(b, filepath.Join(b.TempDir(), "state.db"))
			var s storage.Store = raw
			if p != "off" {
				s = Wrap(raw, load(b, provider(p, "k1", key32)))
			}
			if _, err := s.Create(ctx, secretKey, bytes.Repeat([]byte("s"), 1024)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, secretKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreate is a store Create of a 1 KiB Secret value, bare and
// through each provider (HAVRE_BENCH_DIR=/dev/shm takes fsync out).
func BenchmarkCreate(b *testing.B) {
	for _, p := range []string{"off", "secretbox", "aescbc", "aesgcm"} {
		b.Run(p, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			if d := os.Getenv("HAVRE_BENCH_DIR"); d != "" {
				var err error
				if dir, err = os.MkdirTemp(d, "bench"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
			}
			raw := openBolt(b, filepath.Join(dir, "state.db"))
			var s storage.Store = raw
			if p != "off" {
				s = Wrap(raw, load(b, provider(p, "k1", key32)))
			}
			value := bytes.Repeat([]byte("s"), 1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Create(ctx, secretKey+strconv.Itoa(i), value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

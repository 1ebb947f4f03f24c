package apiserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/registry/catalog"
	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/bolt"
	"github.com/havre/havre/internal/storage/encryption"
)

// BenchmarkSecretEncryption is the create and get rate of Secrets (16
// concurrent callers of the resource handler, store on disk, a 1 KiB value)
// with encryption at rest off (the bare store) and with each provider, in
// one run: `go test ./internal/apiserver -run '^$' -bench SecretEncryption`.
// HAVRE_BENCH_DIR puts the stores elsewhere (/dev/shm takes fsync out).
func BenchmarkSecretEncryption(b *testing.B) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	for _, provider := range []string{"off", "secretbox", "aescbc", "aesgcm"} {
		newServer := func(b *testing.B) *Server {
			dir := b.TempDir()
			if d := os.Getenv("HAVRE_BENCH_DIR"); d != "" {
				var err error
				if dir, err = os.MkdirTemp(d, "bench"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(dir) })
			}
			backend, err := bolt.Open(filepath.Join(dir, "state.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { backend.Close() })
			var store storage.Store = backend
			if provider != "off" {
				cfg := filepath.Join(dir, "enc.yaml")
				data := "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" +
					"  - resources: [secrets]\n    providers:\n      - " + provider + ":\n          keys:\n" +
					"            - name: k1\n              secret: " + key + "\n"
				if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
					b.Fatal(err)
				}
				c, err := encryption.Load(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				store = encryption.Wrap(backend, c)
			}
			s, err := New(Config{Store: store, Resources: catalog.Resources()})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.bootstrap(context.Background()); err != nil {
				b.Fatal(err)
			}
			return s
		}
		secret := func(name string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Data: map[string][]byte{"value": bytes.Repeat([]byte("s"), 1024)}}
		}
		b.Run(provider+"/create", func(b *testing.B) {
			h := newServer(b).handler("", "v1", "secrets")
			var n atomic.Int64
			b.SetParallelism(8) // 16 callers on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := h.create(context.Background(), secret("s-"+strconv.FormatInt(n.Add(1), 10)), writeOptions{manager: "bench"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(provider+"/get", func(b *testing.B) {
			h := newServer(b).handler("", "v1", "secrets")
			const objects = 100
			for i := range objects {
				if _, err := h.create(context.Background(), secret(fmt.Sprint("s-", i)), writeOptions{manager: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					obj, err := h.objs.get(context.Background(), "default", fmt.Sprint("s-", n.Add(1)%objects))
					if err != nil {
						b.Error(err)
						return
					}
					if len(obj.(*corev1.Secret).Data["value"]) != 1024 {
						b.Error("wrong value")
						return
					}
				}
			})
		})
	}
}

package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/bolt"
	"github.com/havre/havre/internal/storage/encryption"
)

// startEncryptedServer runs an API server over dir's store, encrypted as
// the configuration at encPath says ("": the default one, generated in
// dir at first start, as `havre server` does; noEncryption: the bare
// store), until the returned stop.
func startEncryptedServer(t testing.TB, dir, encPath string) (kubernetes.Interface, func()) {
	t.Helper()
	backend, err := bolt.Open(filepath.Join(dir, "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	var store storage.Store = backend
	if encPath != noEncryption {
		enc, err := loadEncryption(context.Background(), Options{DataDir: dir, EncryptionProviderConfig: encPath})
		if err != nil {
			t.Fatal(err)
		}
		if store, err = encryptStore(context.Background(), backend, enc); err != nil {
			t.Fatal(err)
		}
	}
	srv, stopServer := runTestServer(t, dir, store, nil)
	stop := func() {
		stopServer()
		backend.Close()
	}
	return kubernetes.NewForConfigOrDie(srv.LoopbackConfig()), stop
}

// noEncryption makes startEncryptedServer serve the bare store.
const noEncryption = "-"

func marker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "marker-" + hex.EncodeToString(b)
}

// dbContains tells whether the store file holds s.
func dbContains(t *testing.T, dir, s string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, []byte(s))
}

// TestEncryptionAtRest: a Secret written in clear (identity) stays readable
// once encryption is on; one written after is found nowhere in the store
// file yet reads back equal through get, list and watch; with another key
// the server answers an error.
func TestEncryptionAtRest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	identity := filepath.Join(t.TempDir(), "identity.yaml")
	if err := os.WriteFile(identity, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := func(name, value string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Data: map[string][]byte{"password": []byte(value)}}
	}

	// Before encryption: in clear in the file (the scan sees markers).
	old := marker(t)
	client, stop := startEncryptedServer(t, dir, identity)
	if _, err := client.CoreV1().Secrets("default").Create(ctx, secret("old", old), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	if !dbContains(t, dir, old) {
		t.Fatal("the identity provider's Secret is not in clear in the store file: the scan cannot see markers")
	}

	// Encryption on (the default configuration).
	client, stop = startEncryptedServer(t, dir, "")
	if _, err := os.Stat(filepath.Join(dir, "server", encryption.DefaultConfigName)); err != nil {
		t.Fatalf("no default configuration: %v", err)
	}
	secrets := client.CoreV1().Secrets("default")
	got, err := secrets.Get(ctx, "old", metav1.GetOptions{})
	if err != nil || string(got.Data["password"]) != old {
		t.Fatalf("Secret written in clear: %v, %v", got, err)
	}
	w, err := secrets.Watch(ctx, metav1.ListOptions{ResourceVersion: got.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	value := marker(t)
	created, err := secrets.Create(ctx, secret("new", value), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(created.Data["password"]) != value {
		t.Errorf("created %q", created.Data["password"])
	}
	got, err = secrets.Get(ctx, "new", metav1.GetOptions{})
	if err != nil || string(got.Data["password"]) != value {
		t.Fatalf("get: %v, %v", got, err)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, s := range list.Items {
		found[s.Name] = string(s.Data["password"])
	}
	if found["new"] != value || found["old"] != old {
		t.Errorf("list: %v", found)
	}
	select {
	case ev := <-w.ResultChan():
		s, ok := ev.Object.(*corev1.Secret)
		if ev.Type != watch.Added || !ok || s.Name != "new" || string(s.Data["password"]) != value {
			t.Errorf("watch event %v %+v", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	w.Stop()
	stop()
	if dbContains(t, dir, value) {
		t.Error("the store file holds the Secret's value in clear")
	}
	if dbContains(t, dir, "k8s:enc:secretbox:v1:key1:") == false {
		t.Error("no value with upstream's secretbox prefix in the store file")
	}
	// The Secret written in clear was re-encrypted at start (its clear
	// copy stays in the store's history until compaction).
	backend, err := bolt.Open(filepath.Join(dir, "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := backend.Get(ctx, "/registry/core/secrets/default/old")
	backend.Close()
	if err != nil || !bytes.HasPrefix(kv.Value, []byte("k8s:enc:secretbox:v1:key1:")) {
		t.Errorf("the Secret written in clear is stored as %q (%v)", kv.Value, err)
	}

	// Another key, no identity: the Secret cannot be read, and says so.
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, encryption.DefaultConfig("key1", bytes.Repeat([]byte{7}, 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	client, _ = startEncryptedServer(t, dir, other)
	_, err = client.CoreV1().Secrets("default").Get(ctx, "new", metav1.GetOptions{})
	if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "decrypting") {
		t.Errorf("get with another key: %v", err)
	}
}

// BenchmarkSecretAPI is the rate of Secret creates and gets through the API
// (client-go over HTTPS, protobuf, 16 concurrent callers sharing one
// clientset, server and client on the same cores) with encryption at rest
// off (the bare store) and on (the default configuration: secretbox), in
// one run, in the order off, on, on, off: `go test ./internal/server -run '^$' -bench SecretAPI -benchtime 5s`.
func BenchmarkSecretAPI(b *testing.B) {
	value := bytes.Repeat([]byte("s"), 1024)
	for _, mode := range []string{"off", "on", "on", "off"} { // ABBA: drift of the machine cancels out
		enc := ""
		if mode == "off" {
			enc = noEncryption
		}
		client, stop := startEncryptedServer(b, b.TempDir(), enc)
		secrets := client.CoreV1().Secrets("default")
		var n atomic.Int64
		b.Run(mode+"/create", func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-" + strconv.FormatInt(n.Add(1), 10)},
						Data: map[string][]byte{"value": value}}
					if _, err := secrets.Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		created := n.Load()
		b.Run(mode+"/get", func(b *testing.B) {
			if created == 0 {
				b.Skip("no Secrets")
			}
			var i atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					name := "s-" + strconv.FormatInt(i.Add(1)%created+1, 10)
					s, err := secrets.Get(context.Background(), name, metav1.GetOptions{})
					if err != nil || len(s.Data["value"]) != len(value) {
						b.Errorf("get %s: %v", name, err)
						return
					}
				}
			})
		})
		stop()
	}
}

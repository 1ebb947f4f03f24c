package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/internal/storage"
	"github.com/havre/havre/internal/storage/bolt"
)

// key32 is a fixed 32-byte key, base64, and other32 another one.
var (
	key32   = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	other32 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
)

// configFile writes an EncryptionConfiguration of the given providers for
// secrets and returns its path.
func configFile(t testing.TB, providers string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "enc.yaml")
	data := "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" +
		"  - resources: [secrets]\n    providers:\n" + providers
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func provider(name, keyName, secret string) string {
	if name == "identity" {
		return "      - identity: {}\n"
	}
	return "      - " + name + ":\n          keys:\n            - name: " + keyName + "\n              secret: " + secret + "\n"
}

func load(t testing.TB, providers string) *Config {
	t.Helper()
	c, err := Load(context.Background(), configFile(t, providers))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openBolt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const secretKey = "/registry/core/secrets/default/s1"

func TestProviders(t *testing.T) {
	for _, tt := range []struct {
		provider   string
		wantPrefix string
	}{
		{"aescbc", "k8s:enc:aescbc:v1:k1:"},
		{"aesgcm", "k8s:enc:aesgcm:v1:k1:"},
		{"secretbox", "k8s:enc:secretbox:v1:k1:"},
		{"identity", ""},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			ctx := context.Background()
			raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
			s := Wrap(raw, load(t, provider(tt.provider, "k1", key32)))
			plain := []byte("k8s\x00 marker-value-0123456789")
			kv, err := s.Create(ctx, secretKey, plain)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kv.Value, plain) {
				t.Errorf("Create returned %q", kv.Value)
			}
			stored, err := raw.Get(ctx, secretKey)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPrefix == "" {
				if !bytes.Equal(stored.Value, plain) {
					t.Errorf("identity stored %q", stored.Value)
				}
			} else {
				if !bytes.HasPrefix(stored.Value, []byte(tt.wantPrefix)) {
					t.Errorf("stored %q, want prefix %q", stored.Value, tt.wantPrefix)
				}
				if bytes.Contains(stored.Value, []byte("marker-value")) {
					t.Errorf("stored in clear: %q", stored.Value)
				}
			}
			got, err := s.Get(ctx, secretKey)
			if err != nil || !bytes.Equal(got.Value, plain) {
				t.Fatalf("Get: %q, %v", got.Value, err)
			}
			list, err := s.List(ctx, "/registry/core/secrets/", storage.ListOptions{})
			if err != nil || len(list.KVs) != 1 || !bytes.Equal(list.KVs[0].Value, plain) {
				t.Fatalf("List: %+v, %v", list, err)
			}
			// A resource with no provider is stored as given.
			if _, err := s.Create(ctx, "/registry/core/configmaps/default/c", plain); err != nil {
				t.Fatal(err)
			}
			if cm, _ := raw.Get(ctx, "/registry/core/configmaps/default/c"); !bytes.Equal(cm.Value, plain) {
				t.Errorf("configmap stored %q", cm.Value)
			}
		})
	}
}

func TestWatchDecrypts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
	s := Wrap(raw, load(t, provider("aesgcm", "k1", key32)))
	events, err := s.Watch(ctx, "/registry/core/secrets/", 0, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, secretKey, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, secretKey, []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, secretKey, 0); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ        storage.EventType
		value, old string
	}{{storage.Created, "one", ""}, {storage.Updated, "two", "one"}, {storage.Deleted, "two", "two"}}
	for _, w := range want {
		var ev storage.Event
		select {
		case ev = <-events:
		case <-ctx.Done():
			t.Fatal("no event")
		}
		if ev.Type != w.typ || string(ev.KV.Value) != w.value {
			t.Fatalf("event %v %q, want %v %q", ev.Type, ev.KV.Value, w.typ, w.value)
		}
		if w.old != "" && (ev.PrevKV == nil || string(ev.PrevKV.Value) != w.old) {
			t.Fatalf("event %v: previous %+v, want %q", ev.Type, ev.PrevKV, w.old)
		}
	}
}

// TestIdentityFallback: values written in clear before encryption was on
// stay readable (stale), and the next write encrypts them.
func TestIdentityFallback(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := raw.Create(ctx, secretKey, []byte("clear")); err != nil {
		t.Fatal(err)
	}
	s := Wrap(raw, load(t, provider("secretbox", "k1", key32)+provider("identity", "", "")))
	kv, err := s.Get(ctx, secretKey)
	if err != nil || string(kv.Value) != "clear" {
		t.Fatalf("Get: %q, %v", kv.Value, err)
	}
	stale, err := s.fromStorage(ctx, &storage.KeyValue{Key: secretKey, Value: []byte("clear")})
	if err != nil || !stale {
		t.Errorf("clear value: stale %v, %v", stale, err)
	}
	if _, err := s.Update(ctx, secretKey, []byte("clear"), 0); err != nil {
		t.Fatal(err)
	}
	if stored, _ := raw.Get(ctx, secretKey); !bytes.HasPrefix(stored.Value, []byte("k8s:enc:secretbox:v1:k1:")) {
		t.Errorf("rewritten as %q", stored.Value)
	}
}

// TestUnreadable: a wrong or missing key is an error naming the key, not a
// panic nor garbage.
func TestUnreadable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	raw := openBolt(t, path)
	if _, err := Wrap(raw, load(t, provider("aesgcm", "k1", key32))).Create(ctx, secretKey, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, providers, want string
	}{
		{"other key same name", provider("aesgcm", "k1", other32), "decrypting " + secretKey + ": "},
		{"key missing", provider("aesgcm", "k2", key32), "no matching key was found for the provided AES transformer"},
		{"identity only", provider("identity", "", ""), "no matching prefix found"},
		{"other provider", provider("secretbox", "k1", key32) + provider("identity", "", ""), "no matching prefix found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Wrap(raw, load(t, tt.providers))
			if _, err := s.Get(ctx, secretKey); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Get: %v, want %q", err, tt.want)
			}
			if _, err := s.List(ctx, "/registry/core/secrets/", storage.ListOptions{}); err == nil {
				t.Error("List: no error")
			}
		})
	}
	// A value moved to another key does not decrypt: the key is the
	// authenticated data.
	stored, _ := raw.Get(ctx, secretKey)
	moved := "/registry/core/secrets/default/s2"
	if _, err := raw.Create(ctx, moved, stored.Value); err != nil {
		t.Fatal(err)
	}
	if _, err := Wrap(raw, load(t, provider("aesgcm", "k1", key32))).Get(ctx, moved); err == nil {
		t.Error("a value moved to another key decrypted")
	}
}

// TestWatchUnreadable: an event that does not decrypt ends the watch with an
// Error event.
func TestWatchUnreadable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
	s := Wrap(raw, load(t, provider("aesgcm", "k1", key32)))
	events, err := s.Watch(ctx, "/registry/core/secrets/", 0, storage.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, secretKey, []byte("k8s:enc:aesgcm:v1:k1:garbage")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != storage.Error || ev.Err == nil {
			t.Fatalf("event %+v, want an error", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
	select {
	case _, open := <-events:
		if open {
			t.Error("watch not closed after its error")
		}
	case <-ctx.Done():
		t.Fatal("watch not closed")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n"
	for _, tt := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "none.yaml"), "error reading encryption provider configuration file"},
		{"empty", write("empty.yaml", ""), "is empty"},
		{"not yaml", write("bad.yaml", "{{{"), "error decoding encryption provider configuration file"},
		{"wrong kind", write("kind.yaml", "apiVersion: apiserver.config.k8s.io/v1\nkind: Foo\n"), "error decoding encryption provider configuration file"},
		{"short key", write("short.yaml", header+provider("aescbc", "k1", base64.StdEncoding.EncodeToString([]byte("short")))),
			"resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16 24 32]"},
		{"secretbox key", write("sb.yaml", header+provider("secretbox", "k1", base64.StdEncoding.EncodeToString(make([]byte, 16)))),
			"resources[0].providers[0].secretbox.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 16, expected one of [32]"},
		{"not base64", write("b64.yaml", header+provider("aesgcm", "k1", "!!!")), "secret"},
		{"no providers", write("nop.yaml", header), "resources[0].providers: Required value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEnsureDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "server")
	path, created, err := EnsureDefault(dir)
	if err != nil || !created {
		t.Fatalf("EnsureDefault: %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	first, _ := os.ReadFile(path)
	if _, created, err := EnsureDefault(dir); err != nil || created {
		t.Fatalf("second EnsureDefault: %v, created %v", err, created)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(first, again) {
		t.Error("the configuration was rewritten")
	}
	c, err := Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
	if _, err := Wrap(raw, c).Create(ctx, secretKey, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if stored, _ := raw.Get(ctx, secretKey); !bytes.HasPrefix(stored.Value, []byte("k8s:enc:secretbox:v1:key1:")) {
		t.Errorf("stored %q", stored.Value)
	}
	if _, err := Load(ctx, filepath.Join(t.TempDir(), "nothing")); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestGroupResource(t *testing.T) {
	for _, tt := range []struct {
		key, want string
		ok        bool
	}{
		{"/registry/core/secrets/ns/a", "secrets", true},
		{"/registry/core/secrets/", "secrets", true},
		{"/registry/apps/deployments/ns/a", "deployments.apps", true},
		{"/registry/core/secrets", "", false},
		{"/registry/", "", false},
		{"/other/core/secrets/a", "", false},
	} {
		gr, ok := groupResource(tt.key)
		if ok != tt.ok || (ok && gr.String() != tt.want) {
			t.Errorf("%s: %v %v, want %q %v", tt.key, gr, ok, tt.want, tt.ok)
		}
	}
}

// TestRewrite: values in clear and under an older key are written back with
// the first provider's key; the rest, and values that do not decrypt, are
// left alone.
func TestRewrite(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t, filepath.Join(t.TempDir(), "state.db"))
	old := Wrap(raw, load(t, provider("secretbox", "k1", key32)))
	defer func(n int64) { rewritePage = n }(rewritePage)
	rewritePage = 100
	for i := range 250 { // more than two pages
		if _, err := raw.Create(ctx, secretKey+"-clear-"+strconv.Itoa(i), []byte("clear")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Create(ctx, secretKey+"-k1", []byte("under k1")); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, secretKey+"-garbage", []byte("k8s:enc:secretbox:v1:k9:xxxx")); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, "/registry/core/configmaps/default/c", []byte("not configured")); err != nil {
		t.Fatal(err)
	}
	s := Wrap(raw, load(t, provider("secretbox", "k2", other32)+provider("secretbox", "k1", key32)+provider("identity", "", "")))
	pages := 0
	res, err := s.Rewrite(ctx, func(RewriteResult) { pages++ })
	if err != nil {
		t.Fatal(err)
	}
	if want := (RewriteResult{Scanned: 252, Rewritten: 251, Failed: 1}); res != want || pages < 3 {
		t.Fatalf("Rewrite: %+v in %d pages, want %+v in 3", res, pages, want)
	}
	list, err := raw.List(ctx, "/registry/core/secrets/", storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range list.KVs {
		if !bytes.HasPrefix(kv.Value, []byte("k8s:enc:secretbox:v1:k2:")) && !strings.HasSuffix(kv.Key, "-garbage") {
			t.Fatalf("%s stored as %q", kv.Key, kv.Value)
		}
	}
	if kv, err := s.Get(ctx, secretKey+"-k1"); err != nil || string(kv.Value) != "under k1" {
		t.Errorf("after rewrite: %q, %v", kv.Value, err)
	}
	if cm, _ := raw.Get(ctx, "/registry/core/configmaps/default/c"); string(cm.Value) != "not configured" {
		t.Errorf("configmap rewritten: %q", cm.Value)
	}
	if res, err := s.Rewrite(ctx, nil); err != nil || res.Rewritten != 0 {
		t.Errorf("second Rewrite: %+v, %v", res, err)
	}
}

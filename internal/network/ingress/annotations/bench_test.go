package annotations

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkMiddleware measures what the common annotations add to a
// request: CORS, HSTS, an allow list and basic auth (bcrypt, verified
// once then remembered).
func BenchmarkMiddleware(b *testing.B) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.DefaultCost)
	idx := secret("app", "basic", "1", map[string]string{"auth": "u:" + string(h)})
	lister, _ := secretLister(b, idx)
	for _, bc := range []struct {
		name string
		ann  map[string]string
	}{
		{"none", nil},
		{"cors+hsts+allowlist", map[string]string{"enable-cors": "true", "havre.io/hsts": "true", "whitelist-source-range": "10.0.0.0/8,192.0.2.0/24"}},
		{"basic-auth", map[string]string{"auth-type": "basic", "auth-secret": "basic"}},
		{"limit-rps", map[string]string{"limit-rps": "1000000"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mw, _, _ := New(Config{Secrets: lister}).Parse(ingress(bc.ann))
			var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
			if mw != nil {
				handler = mw(handler)
			}
			r := httptest.NewRequest("GET", "https://web.example/", nil)
			r.TLS = &tls.ConnectionState{}
			r.Header.Set("Origin", "https://a.example")
			r.SetBasicAuth("u", "pw")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

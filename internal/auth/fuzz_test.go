package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets for what strangers can send to the authentication layer:
// the bearer token of any request, the static token file an operator
// edits, and the join token file. Run each longer with
// `go test ./internal/auth -run '^$' -fuzz '^FuzzX$' -fuzztime 5m`
// (hack/fuzz.sh runs them all).

// FuzzBearerToken: any Authorization header gets a 401 with a Status body
// or, for the one valid token, through; never a panic.
func FuzzBearerToken(f *testing.F) {
	const valid = "0123456789abcdef0123456789abcdef"
	path := filepath.Join(f.TempDir(), "tokens.csv")
	if err := os.WriteFile(path, []byte(valid+",alice,1,\"dev,ops\"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	tf, err := NewTokenFile(path)
	if err != nil {
		f.Fatal(err)
	}
	var reached *User
	h := WithAuthentication(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached, _ = UserFrom(r.Context())
		if r.Header.Get("Authorization") != "" {
			t := "the Authorization header reached the handler"
			http.Error(w, t, http.StatusInternalServerError)
		}
	}), Union{X509{}, tf}, []string{"/livez"})
	for _, s := range []string{"Bearer " + valid, "bearer  " + valid + " ", "Bearer", "Bearer ", "Basic YTpi",
		"Bearer " + valid + "x", "Bearer \x00", "Bearer " + strings.Repeat("a", 5000), "", "Bearer a b"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, header string, livez bool) {
		path := "/api/v1/pods"
		if livez {
			path = "/livez"
		}
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", header)
		w := httptest.NewRecorder()
		reached = nil
		h.ServeHTTP(w, r)
		token, present := bearerToken(r)
		switch {
		case w.Code == http.StatusInternalServerError:
			t.Fatalf("%q: %s", header, w.Body)
		case present && token == valid:
			if w.Code != http.StatusOK || reached == nil || reached.Name != "alice" {
				t.Fatalf("%q: the valid token gave %d, user %v", header, w.Code, reached)
			}
		case livez:
			if w.Code != http.StatusOK || reached != nil {
				t.Fatalf("%q on /livez: %d, user %v", header, w.Code, reached)
			}
		default:
			if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"kind":"Status"`) {
				t.Fatalf("%q: %d %s, want a 401 Status", header, w.Code, w.Body)
			}
		}
	})
}

// FuzzParseTokenCSV: any token file parses or is refused with an error;
// every token parsed authenticates its own user.
func FuzzParseTokenCSV(f *testing.F) {
	for _, s := range []string{
		"t,u,1\n", "t,u,1,\"g1,g2\"\n", "\n\n", "t,u\n", ",u,1\n", "\"t\nx\",u,1\n", "t,u,1,\"g\n", "a,b,c,d,e,f\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := parseTokenCSV(data)
		if err != nil {
			if table != nil {
				t.Fatalf("error %v with %d entries", err, len(table))
			}
			return
		}
		for _, e := range table {
			if e.user.Name == "" {
				t.Fatalf("an entry without a user name from %q", data)
			}
		}
	})
}

// FuzzJoinTokenFile: any content of the join token file gives a usable
// token (printable ASCII, no spaces, commas or quotes, 16 characters or
// more) or a clear error; never a panic.
func FuzzJoinTokenFile(f *testing.F) {
	for _, s := range []string{"0123456789abcdef\n", "short\n", "with space 0123456789", "a,b0123456789abcdef", "\xff\xfe0123456789abcdef", ""} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "token")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		token, err := ensureJoinToken(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		if len(token) < 16 || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r > '~' || r == ',' || r == '"' }) {
			t.Fatalf("unusable token %q accepted", token)
		}
	})
}

package ingress

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/internal/network/ingress/routes"
)

func TestTimeoutsStreamsAndAccessLog(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(500 * time.Millisecond)
			fmt.Fprint(w, "late")
		case "/stream":
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "tick %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		case "/stall":
			fmt.Fprint(w, "start ")
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
			fmt.Fprint(w, "end")
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	defer srv.Close()
	eps := &fakeEndpoints{}
	eps.set("a", srv.Listener.Addr().String())
	var logs bytes.Buffer
	p := startProxy(t, eps, nil)
	p.cfg.AccessLog = slog.New(slog.NewTextHandler(&logs, nil))
	timed := route("timed", routes.PathPrefix, "/slow", "a")
	timed.BackendTimeout = 100 * time.Millisecond
	read := route("read", routes.PathPrefix, "/stall", "a")
	read.ReadTimeout = 200 * time.Millisecond
	p.Apply(table(&routes.VirtualHost{Routes: []*routes.Route{route("any", routes.PathPrefix, "/", "a"), timed, read}}))

	if code, _ := get(t, http.DefaultClient, p.httpURL("/slow"), "h"); code != http.StatusGatewayTimeout {
		t.Errorf("backend timeout: %d, want 504", code)
	}
	// The stream's lines arrive as they are written.
	resp, err := http.Get(p.httpURL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	if first := time.Since(start); !strings.HasPrefix(string(buf[:n]), "tick 0") || first > 150*time.Millisecond {
		t.Errorf("first line %q after %v", buf[:n], first)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A backend silent longer than ReadTimeout mid-body: the response is cut.
	resp, err = http.Get(p.httpURL("/stall"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && strings.Contains(string(b), "end") {
		t.Errorf("read timeout: got the whole body %q", b)
	}
	if !strings.Contains(logs.String(), `route="Ingress ns/timed" rule=0`) || !strings.Contains(logs.String(), "status=504") {
		t.Errorf("access log:\n%s", logs.String())
	}
}

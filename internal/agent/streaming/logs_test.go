package streaming

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const sampleLog = `2026-11-22T10:00:00.000000001Z stdout F first
2026-11-22T10:00:01.000000001Z stderr F second
2026-11-22T10:00:02.000000001Z stdout P par
2026-11-22T10:00:02.000000002Z stdout F tial
2026-11-22T10:00:03.000000001Z stdout F
2026-11-22T10:00:04.000000001Z stdout F last
`

func TestCopyLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(sampleLog), 0o644); err != nil {
		t.Fatal(err)
	}
	since, _ := time.Parse(time.RFC3339, "2026-11-22T10:00:02Z")
	for _, tc := range []struct {
		name string
		opts LogOptions
		want string
	}{
		{"all", LogOptions{TailLines: -1}, "first\nsecond\npartial\n\nlast\n"},
		{"tail 1", LogOptions{TailLines: 1}, "last\n"},
		{"tail 2", LogOptions{TailLines: 2}, "\nlast\n"},
		{"tail 0", LogOptions{TailLines: 0}, ""},
		{"tail more than the file", LogOptions{TailLines: 100}, "first\nsecond\npartial\n\nlast\n"},
		{"stdout only", LogOptions{TailLines: -1, Stream: "Stdout"}, "first\npartial\n\nlast\n"},
		{"stderr only", LogOptions{TailLines: -1, Stream: "Stderr"}, "second\n"},
		{"since", LogOptions{TailLines: -1, Since: since}, "partial\n\nlast\n"},
		{"limit", LogOptions{TailLines: -1, LimitBytes: 8}, "first\nse"},
		{"timestamps", LogOptions{TailLines: 1, Timestamps: true}, "2026-11-22T10:00:04.000000001Z last\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out bytes.Buffer
			if err := copyLog(context.Background(), &out, f, path, tc.opts, func(context.Context) bool { return false }, time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// TestCopyLogFollow checks that a followed log gets lines appended later and
// ends once the container stopped.
func TestCopyLogFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(sampleLog), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := &syncBuf{}
	stopped := make(chan struct{})
	running := func(context.Context) bool {
		select {
		case <-stopped:
			return false
		default:
			return true
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- copyLog(context.Background(), out, f, path, LogOptions{TailLines: 1, Follow: true}, running, time.Millisecond)
	}()
	waitFor(t, func() bool { return out.String() == "last\n" })
	if _, err := w.WriteString("2026-11-22T10:00:05.000000001Z stdout F appended\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return out.String() == "last\nappended\n" })
	if _, err := w.WriteString("2026-11-22T10:00:06.000000001Z stdout F at exit\n"); err != nil {
		t.Fatal(err)
	}
	close(stopped)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("following did not end once the container stopped")
	}
	if out.String() != "last\nappended\nat exit\n" {
		t.Errorf("followed output %q", out.String())
	}
}

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query string
		ok    bool
	}{
		{"", true},
		{"tailLines=3&follow=true&timestamps=true", true},
		{"tailLines=-1", false},
		{"limitBytes=0", false},
		{"sinceSeconds=0", false},
		{"sinceSeconds=10", true},
		{"sinceTime=2026-11-22T09:00:00Z", true},
		{"sinceTime=yesterday", false},
		{"stream=Stderr", true},
		{"stream=both", false},
	} {
		r := httptest.NewRequest("GET", "/containerLogs/ns/p/c?"+tc.query, nil)
		o, err := parseLogOptions(r, now)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.query, err, tc.ok)
		}
		if tc.query == "sinceSeconds=10" && !o.Since.Equal(now.Add(-10*time.Second)) {
			t.Errorf("sinceSeconds=10: since = %v", o.Since)
		}
	}
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

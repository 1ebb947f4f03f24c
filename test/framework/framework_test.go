package framework

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	calls := 0
	err := WaitFor(5*time.Second, func() (bool, error) {
		calls++
		return calls == 3, nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("WaitFor: err %v after %d calls, want success on the third", err, calls)
	}

	boom := errors.New("boom")
	start := time.Now()
	err = WaitFor(100*time.Millisecond, func() (bool, error) { return true, boom })
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("WaitFor with a failing condition: %v, want a timeout naming the last error", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitFor took %v for a 100ms timeout", d)
	}
}

func TestTail(t *testing.T) {
	text := "a\nb\nc\n"
	if got := tail("x\ny", 1); got != "y" {
		t.Errorf("tail of a text without a final newline: %q", got)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, text}, {1, "c\n"}, {2, "b\nc\n"}, {10, text},
	} {
		if got := tail(text, tc.n); got != tc.want {
			t.Errorf("tail(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestGoModParsing(t *testing.T) {
	gomod := []byte(`module github.com/havre/havre

go 1.26

require (
	k8s.io/api v0.37.2
	k8s.io/kubectl v0.37.2
)

require k8s.io/klog/v2 v2.140.0 // indirect
`)
	if got := modfileModule(gomod); got != modulePath {
		t.Errorf("module %q", got)
	}
	for mod, want := range map[string]string{
		"k8s.io/kubectl": "v0.37.2",
		"k8s.io/klog/v2": "v2.140.0",
		"k8s.io/missing": "",
	} {
		if got := requiredVersion(gomod, mod); got != want {
			t.Errorf("requiredVersion(%s) = %q, want %q", mod, got, want)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/cmd/havre"); err != nil {
		t.Errorf("module root %s has no cmd/havre: %v", root, err)
	}
}

func TestProcessRSS(t *testing.T) {
	rss, err := ProcessRSS(os.Getpid())
	if err != nil {
		t.Skipf("no RSS on this system: %v", err)
	}
	if rss < 1<<20 || rss > 1<<40 {
		t.Errorf("RSS of the test process %d bytes is implausible", rss)
	}
}

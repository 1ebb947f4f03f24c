package api_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestCrashRecovery kills the server with SIGKILL while 8 clients create
// ConfigMaps, restarts it on the same data dir, and checks that every
// create the server acknowledged survived, unchanged. Every write is
// acknowledged only once durable, so none may be lost.
// HAVRE_E2E_CRASH_ITERATIONS sets the number of kill/restart rounds (5).
func TestCrashRecovery(t *testing.T) {
	iterations := 5
	if v := os.Getenv("HAVRE_E2E_CRASH_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HAVRE_E2E_CRASH_ITERATIONS=%q: want a positive number", v)
		}
		iterations = n
	}
	const (
		workers          = 8
		maxPerWorker     = 5000
		roundTimeout     = 90 * time.Second
		perRequestLimit  = 15 * time.Second
		firstKillAfter   = 100
		killAfterEachRun = 37
	)

	s := startServer(t)
	ns := newNamespace(t, s.Clientset())
	acked := map[string]string{} // name -> resourceVersion of every acknowledged create

	for it := range iterations {
		cfg := s.RESTConfig()
		cfg.Timeout = perRequestLimit
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}

		roundCtx, cancel := context.WithTimeout(t.Context(), roundTimeout)
		var (
			mu         sync.Mutex
			roundAcked = map[string]string{}
			beforeKill []error // errors while the server was up: each is a failure
			count      atomic.Int64
			killed     atomic.Bool
			trigger    = make(chan struct{})
			once       sync.Once
			wg         sync.WaitGroup
		)
		// Kill after a number of acknowledgements that varies by round,
		// so the kill lands at different points of the store's life.
		killAt := int64(firstKillAfter + killAfterEachRun*it)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range maxPerWorker {
					if roundCtx.Err() != nil {
						return
					}
					name := fmt.Sprintf("crash-%d-%d-%04d", it, w, i)
					out, err := cs.CoreV1().ConfigMaps(ns).Create(roundCtx, configMap(name, map[string]string{"name": name}), metav1.CreateOptions{})
					if err != nil {
						if killed.Load() {
							return // the server is gone: expected
						}
						mu.Lock()
						beforeKill = append(beforeKill, fmt.Errorf("create %s: %w", name, err))
						mu.Unlock()
						return
					}
					mu.Lock()
					roundAcked[name] = out.ResourceVersion
					mu.Unlock()
					if count.Add(1) == killAt {
						once.Do(func() { close(trigger) })
					}
				}
			}()
		}

		workersDone := make(chan struct{})
		go func() {
			wg.Wait()
			close(workersDone)
		}()
		select {
		case <-trigger:
		case <-workersDone:
		case <-roundCtx.Done():
		}
		// killed is set before the kill, so every create the kill breaks
		// is recognised as such; any other failure is the server's.
		killed.Store(true)
		reached := count.Load() >= killAt
		if reached {
			s.Kill()
		}
		<-workersDone // bounded: every request uses roundCtx
		cancel()
		mu.Lock()
		errs := beforeKill
		for name, rv := range roundAcked {
			acked[name] = rv
		}
		n := len(roundAcked)
		mu.Unlock()
		for _, err := range errs {
			t.Errorf("round %d: a create failed while the server was up: %v", it, err)
		}
		if !reached {
			t.Fatalf("round %d: only %d creates acknowledged (kill planned after %d)", it, n, killAt)
		}

		s.Restart()

		verify, err := kubernetes.NewForConfig(s.RESTConfig())
		if err != nil {
			t.Fatal(err)
		}
		list, err := verify.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("round %d: list after restart: %v", it, err)
		}
		stored := map[string]string{}
		for _, cm := range list.Items {
			stored[cm.Name] = cm.ResourceVersion
			if cm.Name != rootCAConfigMap && cm.Data["name"] != cm.Name {
				t.Errorf("round %d: %s has data %v", it, cm.Name, cm.Data)
			}
		}
		var lost []string
		for name, rv := range acked {
			got, ok := stored[name]
			switch {
			case !ok:
				lost = append(lost, name)
			case got != rv:
				t.Errorf("round %d: %s is at resourceVersion %s, its create was acknowledged at %s", it, name, got, rv)
			}
		}
		if len(lost) > 0 {
			t.Fatalf("round %d: %d of %d acknowledged creates lost after SIGKILL and restart: %v", it, len(lost), len(acked), sortedCopy(lost))
		}
		t.Logf("round %d: killed after %d acknowledged creates; all %d acknowledged so far survived (%d stored)", it, n, len(acked), len(list.Items))

		// The restarted server takes writes and serves them.
		probe := fmt.Sprintf("probe-%d", it)
		if _, err := verify.CoreV1().ConfigMaps(ns).Create(ctx(t), configMap(probe, map[string]string{"name": probe}), metav1.CreateOptions{}); err != nil {
			t.Fatalf("round %d: create after restart: %v", it, err)
		}
		acked[probe] = ""
		if got, err := verify.CoreV1().ConfigMaps(ns).Get(ctx(t), probe, metav1.GetOptions{}); err != nil {
			t.Fatalf("round %d: get after restart: %v", it, err)
		} else {
			acked[probe] = got.ResourceVersion
		}
		if !rvGreater(acked[probe], list.ResourceVersion) {
			t.Errorf("round %d: a write after restart got resourceVersion %s, not after the list's %s", it, acked[probe], list.ResourceVersion)
		}
	}
}

// TestGracefulRestart stops the server with SIGTERM (it must exit 0),
// starts it again on the same data dir and port, and checks that objects,
// resourceVersions and credentials were kept and that clients created
// before the restart keep working.
func TestGracefulRestart(t *testing.T) {
	s := startServer(t)
	if !strings.Contains(s.Logs(), s.Kubeconfig()) {
		t.Errorf("the server log does not name the kubeconfig %s", s.Kubeconfig())
	}
	cs := s.Clientset()
	ns := newNamespace(t, cs)
	names := createConfigMaps(t, cs, ns, "keep", 20, map[string]string{"keep": "yes"})
	before, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "keep=yes"})
	if err != nil {
		t.Fatal(err)
	}
	// Selected as the list is: the root CA publisher's ConfigMap may still
	// be added to the new namespace.
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx(t), metav1.ListOptions{LabelSelector: "keep=yes", ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	s.Restart() // SIGTERM, wait for exit 0, start again

	// A watch open across the shutdown was ended, not left hanging.
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Errorf("watch delivered %s across a restart with no change", ev.Type)
		}
	case <-time.After(eventTimeout):
		t.Error("a watch open during shutdown did not end")
	}

	after, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{LabelSelector: "keep=yes"})
	if err != nil {
		t.Fatalf("the clientset from before the restart: %v", err)
	}
	if got := configMapNames(after.Items); !equalStrings(got, names) {
		t.Fatalf("after restart: %v, want %v", got, names)
	}
	for i := range after.Items {
		b, a := before.Items[i], after.Items[i]
		if a.UID != b.UID || a.ResourceVersion != b.ResourceVersion || a.Data["k"] != b.Data["k"] {
			t.Errorf("%s changed across the restart: uid %s->%s rv %s->%s", a.Name, b.UID, a.UID, b.ResourceVersion, a.ResourceVersion)
		}
	}
	// Writes continue after the last revision before the restart.
	cm := mustCreateConfigMap(t, cs, ns, configMap("after-restart", nil))
	if !rvGreater(cm.ResourceVersion, before.ResourceVersion) {
		t.Errorf("first write after restart at resourceVersion %s, not after %s", cm.ResourceVersion, before.ResourceVersion)
	}
	// kubectl, with its discovery cache from before, still works.
	s.MustKubectl(t, "-n", ns, "get", "configmap", "after-restart")
}

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

// eventTimeout bounds the wait for one expected watch event.
const eventTimeout = 15 * time.Second

// nextEvent returns the next event of w, failing the test if none comes in
// time or the watch ends. Events about rootCAConfigMap are skipped.
func nextEvent(t testing.TB, w watch.Interface) watch.Event {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch ended unexpectedly")
			}
			if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && cm.Name == rootCAConfigMap {
				continue
			}
			return ev
		case <-deadline:
			t.Fatalf("no watch event within %v", eventTimeout)
		}
	}
}

func TestWatch(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	t.Run("FromResourceVersion", func(t *testing.T) { testWatchFromResourceVersion(t, cs) })
	t.Run("WatchList", func(t *testing.T) { testWatchList(t, cs) })
	t.Run("Informer", func(t *testing.T) { testInformer(t, s) })
}

type wantEvent struct {
	typ  watch.EventType
	name string
	rv   string // "" when the change's resourceVersion is not known to the client (delete)
	data string
}

func testWatchFromResourceVersion(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	mustCreateConfigMap(t, cs, ns, configMap("before", map[string]string{"v": "0"}))
	start, err := api.List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var want []wantEvent
	a := mustCreateConfigMap(t, cs, ns, configMap("a", map[string]string{"v": "1"}))
	want = append(want, wantEvent{watch.Added, "a", a.ResourceVersion, "1"})
	b := mustCreateConfigMap(t, cs, ns, configMap("b", map[string]string{"v": "1"}))
	want = append(want, wantEvent{watch.Added, "b", b.ResourceVersion, "1"})
	a.Data["v"] = "2"
	a, err = api.Update(ctx(t), a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantEvent{watch.Modified, "a", a.ResourceVersion, "2"})
	if err := api.Delete(ctx(t), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want = append(want, wantEvent{watch.Deleted, "b", "", "1"})
	a.Data["v"] = "3"
	a, err = api.Update(ctx(t), a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, wantEvent{watch.Modified, "a", a.ResourceVersion, "3"})

	w, err := api.Watch(ctx(t), metav1.ListOptions{ResourceVersion: start.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	prevRV := start.ResourceVersion
	for i, we := range want {
		ev := nextEvent(t, w)
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			t.Fatalf("event %d: %s with %T, want %s of %s", i, ev.Type, ev.Object, we.typ, we.name)
		}
		if ev.Type != we.typ || cm.Name != we.name || cm.Data["v"] != we.data {
			t.Fatalf("event %d: %s %s v=%s, want %s %s v=%s", i, ev.Type, cm.Name, cm.Data["v"], we.typ, we.name, we.data)
		}
		if we.rv != "" && cm.ResourceVersion != we.rv {
			t.Errorf("event %d: resourceVersion %s, the write returned %s", i, cm.ResourceVersion, we.rv)
		}
		if !rvGreater(cm.ResourceVersion, prevRV) {
			t.Errorf("event %d: resourceVersion %s does not follow %s", i, cm.ResourceVersion, prevRV)
		}
		prevRV = cm.ResourceVersion
	}
	// The next event is a new change: nothing else was queued.
	mustCreateConfigMap(t, cs, ns, configMap("sentinel", nil))
	ev := nextEvent(t, w)
	if cm, ok := ev.Object.(*corev1.ConfigMap); !ok || ev.Type != watch.Added || cm.Name != "sentinel" {
		t.Fatalf("after the expected events got %s %#v, want ADDED sentinel", ev.Type, ev.Object)
	}
}

// rvGreater compares resourceVersions. They are opaque to clients, but
// within one server they are etcd-style revisions; compare as numbers when
// both parse.
func rvGreater(a, b string) bool {
	var x, y uint64
	if _, err := fmt.Sscan(a, &x); err != nil {
		return a != b
	}
	if _, err := fmt.Sscan(b, &y); err != nil {
		return a != b
	}
	return x > y
}

func testWatchList(t *testing.T, cs kubernetes.Interface) {
	ns := newNamespace(t, cs)
	existing := createConfigMaps(t, cs, ns, "init", 25, nil)
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx(t), metav1.ListOptions{
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var initial []string
	for {
		ev := nextEvent(t, w)
		cm, ok := ev.Object.(*corev1.ConfigMap)
		if !ok {
			t.Fatalf("%s event with %T", ev.Type, ev.Object)
		}
		if ev.Type == watch.Bookmark {
			if cm.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
				continue // an ordinary progress bookmark
			}
			if !rvGreater(cm.ResourceVersion, list.ResourceVersion) && cm.ResourceVersion != list.ResourceVersion {
				t.Errorf("initial-events-end bookmark at %s, before the list's %s", cm.ResourceVersion, list.ResourceVersion)
			}
			break
		}
		if ev.Type != watch.Added {
			t.Fatalf("initial event %s %s, want ADDED", ev.Type, cm.Name)
		}
		initial = append(initial, cm.Name)
		if len(initial) > len(existing) {
			t.Fatalf("more initial events than objects: %v", initial)
		}
	}
	if got := sortedCopy(initial); !equalStrings(got, existing) {
		t.Fatalf("initial events for %v, want %v", got, existing)
	}
	mustCreateConfigMap(t, cs, ns, configMap("after", nil))
	for {
		ev := nextEvent(t, w)
		if ev.Type == watch.Bookmark {
			continue
		}
		if cm, ok := ev.Object.(*corev1.ConfigMap); !ok || ev.Type != watch.Added || cm.Name != "after" {
			t.Fatalf("after the initial events got %s %#v, want ADDED after", ev.Type, ev.Object)
		}
		break
	}
}

// requestLog records the requests a client sends.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Method+" "+r.URL.RequestURI())
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (l *requestLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// handlerLog records what an informer's handlers saw, per object name.
type handlerLog struct {
	mu     sync.Mutex
	events map[string][]string
}

func (h *handlerLog) add(name, what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events[name] = append(h.events[name], what)
}

func (h *handlerLog) get(name string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events[name])
}

func testInformer(t *testing.T, s *framework.Server) {
	ns := newNamespace(t, s.Clientset())
	preexisting := createConfigMaps(t, s.Clientset(), ns, "pre", 10, nil)

	var reqs requestLog
	cfg := s.RESTConfig()
	cfg.Wrap(reqs.wrap)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	informer := factory.Core().V1().ConfigMaps().Informer()
	log := &handlerLog{events: map[string][]string{}}
	nameOf := func(obj any) string {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			return cm.Name
		}
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			return d.Key[strings.LastIndex(d.Key, "/")+1:]
		}
		return fmt.Sprintf("%T", obj)
	}
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if initial {
				log.add(nameOf(obj), "initial-add")
			} else {
				log.add(nameOf(obj), "add")
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, n := oldObj.(*corev1.ConfigMap), newObj.(*corev1.ConfigMap)
			log.add(nameOf(newObj), "update:"+o.Data["v"]+"->"+n.Data["v"])
		},
		DeleteFunc: func(obj any) {
			if _, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				log.add(nameOf(obj), "delete-final-state-unknown")
				return
			}
			log.add(nameOf(obj), "delete")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer func() {
		close(stop)
		factory.Shutdown()
	}()
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	synced := cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced)
	cancel()
	if !synced {
		t.Fatalf("informer did not sync within 30s; requests: %v", reqs.snapshot())
	}
	if keys := cachedNames(informer); !equalStrings(keys, preexisting) {
		t.Fatalf("synced cache holds %v, want %v", keys, preexisting)
	}

	// client-go 0.37 starts informers with a watch-list request; the
	// server supports it, so there must be no fallback LIST.
	var watchList, lists []string
	for _, r := range reqs.snapshot() {
		if strings.Contains(r, "sendInitialEvents=true") && strings.Contains(r, "watch=true") {
			watchList = append(watchList, r)
		} else if !strings.Contains(r, "watch=true") {
			lists = append(lists, r)
		}
	}
	if len(watchList) == 0 || len(lists) != 0 {
		t.Errorf("informer requests: watch-list %v, plain lists %v; want a watch-list and no fallback list", watchList, lists)
	}

	const n = 100
	cms := s.Clientset().CoreV1().ConfigMaps(ns)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("obj-%03d", i)
	}
	parallel(t, names, func(name string) error {
		_, err := cms.Create(ctx(t), configMap(name, map[string]string{"v": "1"}), metav1.CreateOptions{})
		return err
	})
	parallel(t, names, func(name string) error {
		_, err := cms.Patch(ctx(t), name, types.MergePatchType, []byte(`{"data":{"v":"2"}}`), metav1.PatchOptions{})
		return err
	})
	parallel(t, names, func(name string) error {
		return cms.Delete(ctx(t), name, metav1.DeleteOptions{})
	})

	want := []string{"add", "update:1->2", "delete"}
	err = framework.WaitFor(30*time.Second, func() (bool, error) {
		for _, name := range names {
			if len(log.get(name)) < len(want) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var missing []string
		for _, name := range names {
			if got := log.get(name); len(got) < len(want) {
				missing = append(missing, fmt.Sprintf("%s:%v", name, got))
			}
		}
		t.Fatalf("handlers did not see every change: %v; incomplete: %v", err, missing)
	}
	for _, name := range names {
		if got := log.get(name); !slices.Equal(got, want) {
			t.Errorf("%s: handlers saw %v, want %v", name, got, want)
		}
	}
	for _, name := range preexisting {
		if got := log.get(name); !slices.Equal(got, []string{"initial-add"}) {
			t.Errorf("%s: handlers saw %v, want one initial add", name, got)
		}
	}
	if keys := cachedNames(informer); !equalStrings(keys, preexisting) {
		t.Errorf("cache holds %v at the end, want %v", keys, preexisting)
	}
}

// cachedNames returns the sorted names of the configmaps in an informer's
// cache, without rootCAConfigMap.
func cachedNames(informer cache.SharedIndexInformer) []string {
	var names []string
	for _, obj := range informer.GetStore().List() {
		if cm := obj.(*corev1.ConfigMap); cm.Name != rootCAConfigMap {
			names = append(names, cm.Name)
		}
	}
	return sortedCopy(names)
}

// parallel runs fn for every name with 8 workers and fails on any error.
func parallel(t *testing.T, names []string, fn func(string) error) {
	t.Helper()
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := fn(name); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
				}
			}
		}()
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// compactionFlag returns the server flag that sets the compaction interval,
// found in `havre server --help`, or "".
func compactionFlag(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command(framework.Havre(t), "server", "--help").CombinedOutput()
	m := regexp.MustCompile(`--([a-z0-9-]*compact[a-z0-9-]*)`).FindStringSubmatch(string(out))
	if m == nil {
		return ""
	}
	return m[1]
}

// TestWatchExpired checks that a watch from a compacted resourceVersion
// ends with 410 Expired, as kube-apiserver's does.
func TestWatchExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e test")
	}
	flag := compactionFlag(t)
	if flag == "" {
		t.Skip("havre server has no flag to set the compaction interval, and nothing else lets a test compact history; " +
			"a watch from a compacted resourceVersion cannot be provoked")
	}
	s := startServer(t, framework.WithArgs("--"+flag+"=1s"))
	cs := s.Clientset()
	ns := newNamespace(t, cs)
	api := cs.CoreV1().ConfigMaps(ns)
	cm := mustCreateConfigMap(t, cs, ns, configMap("churn", map[string]string{"i": "0"}))
	oldRV := cm.ResourceVersion

	// Keep writing until a list at the old revision is refused as
	// expired: history up to there has been compacted.
	i := 0
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		i++
		cm.Data["i"] = fmt.Sprint(i)
		updated, err := api.Update(ctx(t), cm, metav1.UpdateOptions{})
		if err != nil {
			return false, err
		}
		cm = updated
		_, err = api.List(ctx(t), metav1.ListOptions{ResourceVersion: oldRV, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		if err == nil {
			return false, nil
		}
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			expectStatusCode(t, err, 410)
			return true, nil
		}
		return false, err
	}, "resourceVersion %s was never compacted with --%s=1s", oldRV, flag)

	w, err := api.Watch(ctx(t), metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Fatalf("watch from a compacted resourceVersion: %v, want 410 Expired", err)
		}
		expectStatusCode(t, err, 410)
		return
	}
	defer w.Stop()
	ev := nextEvent(t, w)
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok {
		t.Fatalf("first event of a watch from a compacted resourceVersion: %s %T, want ERROR with a Status", ev.Type, ev.Object)
	}
	if st.Code != http.StatusGone || (st.Reason != metav1.StatusReasonExpired && st.Reason != metav1.StatusReasonGone) {
		t.Fatalf("watch error %d %s %q, want 410 Expired", st.Code, st.Reason, st.Message)
	}
}

func expectStatusCode(t *testing.T, err error, code int32) {
	t.Helper()
	if st := statusOf(t, err); st.Code != code {
		t.Errorf("status code %d, want %d (%s)", st.Code, code, st.Message)
	}
}

package aggregator

import (
	"context"
	"crypto/sha512"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/havre/havre/internal/registry"
)

// openAPIBackend serves a resource list, an /openapi/v3 index and the
// documents it lists, or 500 for everything while down.
type openAPIBackend struct {
	mu   sync.Mutex
	docs map[string]string // by name ("apis/<group>/<version>")
	down bool
	// indexes and fetches count the index and document requests.
	indexes, fetches int
	// users are who the requests came from (X-Remote-User).
	users map[string]bool
}

func (b *openAPIBackend) set(docs map[string]string, down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.docs, b.down = docs, down
}

func (b *openAPIBackend) counts() (indexes, fetches int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.indexes, b.fetches
}

func hashOf(doc string) string { return fmt.Sprintf("%X", sha512.Sum512([]byte(doc))) }

func (b *openAPIBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.users[r.Header.Get("X-Remote-User")+" "+fmt.Sprint(r.Header.Values("X-Remote-Group"))] = true
	if b.down {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	switch {
	case r.URL.Path == "/openapi/v3":
		b.indexes++
		index := `{"paths":{`
		sep := ""
		for name, doc := range b.docs {
			index += fmt.Sprintf(`%s%q:{"serverRelativeURL":"/openapi/v3/%s?hash=%s"}`, sep, name, name, hashOf(doc))
			sep = ","
		}
		_, _ = w.Write([]byte(index + "}}"))
	case len(r.URL.Path) > len("/openapi/v3/"):
		doc, ok := b.docs[r.URL.Path[len("/openapi/v3/"):]]
		if !ok || r.URL.Query().Get("hash") != hashOf(doc) {
			http.NotFound(w, r)
			return
		}
		b.fetches++
		_, _ = w.Write([]byte(doc))
	default:
		_, _ = w.Write([]byte(`{"kind":"APIResourceList","groupVersion":"wardle.example.com/v1alpha1",` +
			`"resources":[{"name":"flunders","kind":"Flunder","namespaced":true,"verbs":["get"]}]}`))
	}
}

// TestFetchOpenAPIV3 follows an APIService's OpenAPI v3 document through
// the discovery passes: fetched from the document its backend's index
// lists for its group version only (not other names, not again while the
// hash stays), kept while the backend fails, dropped when the index no
// longer lists it, when the APIService is unavailable or gone.
func TestFetchOpenAPIV3(t *testing.T) {
	b := &openAPIBackend{users: map[string]bool{}}
	a, apis, spec := newBackend(t, b)
	a.SetOpenAPISink(&recordingSink{})
	const name = "apis/wardle.example.com/v1alpha1"
	docA, docB := `{"openapi":"3.0.0","info":{"title":"A"}}`, `{"openapi":"3.0.0","info":{"title":"B"}}`
	other := map[string]string{"apis/other.example.com/v1": `{"openapi":"3.0.0"}`}
	api := &apiregistrationv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com", ResourceVersion: "1"},
		Spec: spec("wardle.example.com", "v1alpha1"), Status: apiregistrationv1.APIServiceStatus{Conditions: available}}
	unavailable := api.DeepCopy()
	unavailable.Status.Conditions = []apiregistrationv1.APIServiceCondition{{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse}}

	for _, tt := range []struct {
		name    string
		api     *apiregistrationv1.APIService // nil: deleted
		backend map[string]string
		down    bool
		want    string // the document handed on, "" for none
		fetches int    // documents fetched in the pass
	}{
		{name: "fetched", api: api, backend: map[string]string{name: docA, "apis/other.example.com/v1": other["apis/other.example.com/v1"]}, want: docA, fetches: 1},
		{name: "same hash, not fetched again", api: api, backend: map[string]string{name: docA}, want: docA},
		{name: "changed", api: api, backend: map[string]string{name: docB}, want: docB, fetches: 1},
		{name: "backend down, last copy kept", api: api, backend: map[string]string{name: docB}, down: true, want: docB},
		{name: "not in the index any more", api: api, backend: other},
		{name: "listed again", api: api, backend: map[string]string{name: docA}, want: docA, fetches: 1},
		{name: "unavailable", api: unavailable, backend: map[string]string{name: docA}},
		{name: "available again", api: api, backend: map[string]string{name: docA}, want: docA, fetches: 1},
		{name: "deleted", backend: map[string]string{name: docA}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.api != nil {
				_ = apis.Update(tt.api)
			} else {
				_ = apis.Delete(api)
			}
			b.set(tt.backend, tt.down)
			_, before := b.counts()
			_, docs := a.fetchAll(context.Background())
			if _, after := b.counts(); after-before != tt.fetches {
				t.Errorf("%d documents fetched, want %d", after-before, tt.fetches)
			}
			want := map[string]string{}
			if tt.want != "" {
				want[name] = tt.want
			}
			if len(docs) != len(want) || string(docs[name]) != want[name] {
				t.Errorf("documents %q, want %q", docs, want)
			}
		})
	}
	if len(a.openapi) != 0 {
		t.Errorf("documents kept for deleted APIServices: %v", a.openapi)
	}
	for user := range b.users {
		if user != "system:kube-aggregator [system:masters]" {
			t.Errorf("request as %q", user)
		}
	}
}

// recordingSink records what the discovery loop hands on.
type recordingSink struct {
	resources chan []*registry.Resource
	docs      chan map[string][]byte
}

func (s *recordingSink) SetAggregated(r []*registry.Resource) {
	if s.resources != nil {
		s.resources <- r
	}
}

func (s *recordingSink) SetAggregatedV3(d map[string][]byte) {
	if s.docs != nil {
		s.docs <- d
	}
}

// TestDiscoveryLoopOpenAPISink checks that the loop hands the documents
// on when they change, and only then.
func TestDiscoveryLoopOpenAPISink(t *testing.T) {
	b := &openAPIBackend{users: map[string]bool{}}
	a, apis, spec := newBackend(t, b)
	sink := &recordingSink{resources: make(chan []*registry.Resource, 10), docs: make(chan map[string][]byte, 10)}
	a.SetDiscoverySink(sink)
	a.SetOpenAPISink(sink)
	const name = "apis/wardle.example.com/v1alpha1"
	docA, docB := `{"openapi":"3.0.0","info":{"title":"A"}}`, `{"openapi":"3.0.0","info":{"title":"B"}}`
	api := &apiregistrationv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com", ResourceVersion: "1"},
		Spec: spec("wardle.example.com", "v1alpha1"), Status: apiregistrationv1.APIServiceStatus{Conditions: available}}
	_ = apis.Add(api)
	b.set(map[string]string{name: docA}, false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.discoveryLoop(ctx)
	next := func() map[string][]byte {
		t.Helper()
		select {
		case d := <-sink.docs:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no documents handed on")
			return nil
		}
	}
	if d := next(); len(d) != 1 || string(d[name]) != docA {
		t.Fatalf("first pass: %q", d)
	}
	// A pass without a change hands nothing on: the next documents are
	// those of the change after it.
	a.kick()
	deadline := time.Now().Add(10 * time.Second)
	for indexes, _ := b.counts(); indexes < 2; indexes, _ = b.counts() {
		if time.Now().After(deadline) {
			t.Fatal("no second pass")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.set(map[string]string{name: docB}, false)
	a.kick()
	if d := next(); len(d) != 1 || string(d[name]) != docB {
		t.Fatalf("after the change: %q", d)
	}
	_ = apis.Delete(api)
	a.kick()
	if d := next(); len(d) != 0 {
		t.Fatalf("after the deletion: %q", d)
	}
}

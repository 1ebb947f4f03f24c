package crd_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/test/framework"
)

// waitGone waits until get reports NotFound.
func waitGone(t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, func(c context.Context) (bool, error) {
		err := get(c)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s still there: %v", what, err)
	}
}

// TestCustomResourceGarbageCollection: the garbage collector cascades
// through custom resources' ownerReferences (background and kubectl's
// --cascade=foreground), and deleting a namespace deletes the custom
// resources in it.
func TestCustomResourceGarbageCollection(t *testing.T) {
	s := startServer(t)
	mustEstablish(t, s, widgetsCRD, "widgets.example.com")
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "gc")
	dyn := s.Dynamic().Resource(widgets).Namespace(ns)

	for _, cascade := range []string{"background", "foreground"} {
		parent, err := dyn.Create(ctx(t), widget("parent-"+cascade, map[string]any{"size": "small"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref := []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Widget", Name: parent.GetName(), UID: parent.GetUID(),
			BlockOwnerDeletion: ptr(true)}}
		child := widget("child-"+cascade, map[string]any{"size": "small"})
		child.SetOwnerReferences(ref)
		if _, err := dyn.Create(ctx(t), child, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + cascade, OwnerReferences: ref}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx(t), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		s.MustKubectl(t, "delete", "-n", ns, "widget", parent.GetName(), "--cascade="+cascade, "--timeout=60s")
		waitGone(t, "child widget", func(c context.Context) error {
			_, err := dyn.Get(c, "child-"+cascade, metav1.GetOptions{})
			return err
		})
		waitGone(t, "owned configmap", func(c context.Context) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Get(c, "cm-"+cascade, metav1.GetOptions{})
			return err
		})
	}

	// Namespace deletion.
	ns2 := framework.NewNamespace(t, cs, "nsdel")
	if _, err := s.Dynamic().Resource(widgets).Namespace(ns2).Create(ctx(t), widget("doomed", map[string]any{"size": "large"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.MustKubectl(t, "delete", "namespace", ns2, "--timeout=60s")
	waitGone(t, "namespace", func(c context.Context) error {
		_, err := cs.CoreV1().Namespaces().Get(c, ns2, metav1.GetOptions{})
		return err
	})
	list, err := s.Dynamic().Resource(widgets).List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range list.Items {
		if item.GetNamespace() == ns2 {
			t.Errorf("widget %s/%s survived its namespace", ns2, item.GetName())
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestCustomResourceDefinitionWatch mirrors "[sig-api-machinery]
// CustomResourceDefinition Watch [Privileged:ClusterAdmin] watch on custom
// resource definition objects": ADDED, MODIFIED and DELETED events of
// custom resources from a resourceVersion, with bookmarks; and a
// controller on client-go dynamic informers writes the status of every
// custom resource it sees.
func TestCustomResourceDefinitionWatch(t *testing.T) {
	s := startServer(t)
	mustEstablish(t, s, widgetsCRD, "widgets.example.com")
	ns := framework.NewNamespace(t, s.Clientset(), "watch")
	dyn := s.Dynamic().Resource(widgets).Namespace(ns)

	first, err := dyn.Create(ctx(t), widget("a", map[string]any{"size": "small"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dyn.Watch(ctx(t), metav1.ListOptions{ResourceVersion: first.GetResourceVersion(), AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := dyn.Create(ctx(t), widget("b", map[string]any{"size": "small"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Patch(ctx(t), "a", "application/merge-patch+json", []byte(`{"spec":{"size":"large"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dyn.Delete(ctx(t), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADDED b", "MODIFIED a", "DELETED b"}
	var got []string
	timeout := time.After(30 * time.Second)
	for len(got) < len(want) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended after %v", got)
			}
			if ev.Type == watch.Bookmark {
				continue
			}
			u := ev.Object.(*unstructured.Unstructured)
			if u.GetAPIVersion() != "example.com/v1" || u.GetKind() != "Widget" {
				t.Errorf("event object %s %s", u.GetAPIVersion(), u.GetKind())
			}
			got = append(got, string(ev.Type)+" "+u.GetName())
		case <-timeout:
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}

	// A controller on dynamic informers writes status.phase of what it sees.
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.Dynamic(), 0, ns, nil)
	inf := factory.ForResource(widgets).Informer()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	queue := make(chan string, 100)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		queue <- obj.(*unstructured.Unstructured).GetName()
	}})
	factory.Start(c.Done())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-c.Done():
				return
			case name := <-queue:
				u, err := dyn.Get(c, name, metav1.GetOptions{})
				if err != nil {
					continue
				}
				_ = unstructured.SetNestedField(u.Object, "Seen", "status", "phase")
				_, _ = dyn.UpdateStatus(c, u, metav1.UpdateOptions{})
			}
		}
	}()
	for _, name := range []string{"c", "d"} {
		if _, err := dyn.Create(ctx(t), widget(name, map[string]any{"size": "small"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "c", "d"} {
		err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
			u, err := dyn.Get(c, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
			return phase == "Seen", nil
		})
		if err != nil {
			t.Errorf("widget %s: status not written by the controller: %v", name, err)
		}
	}
}

// multiVersionCRD serves v1 (storage) and v2, and defines v3 unserved.
const multiVersionCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.org
spec:
  group: example.org
  scope: Cluster
  names: {plural: things, kind: Thing}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
  - name: v2
    served: true
    storage: false
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
  - name: v3
    served: false
    storage: false
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

// TestCustomResourceDefinitionVersions mirrors "[sig-api-machinery]
// CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple
// CustomResourceDefinition listing custom resource definition objects
// works" and the discovery test: a cluster-scoped definition with several
// versions serves each served version (conversion None rewrites
// apiVersion), hides unserved ones, keeps unknown fields where the schema
// preserves them.
func TestCustomResourceDefinitionVersions(t *testing.T) {
	s := startServer(t)
	mustEstablish(t, s, multiVersionCRD, "things.example.org")
	v1 := schema.GroupVersionResource{Group: "example.org", Version: "v1", Resource: "things"}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.org/v1", "kind": "Thing", "metadata": map[string]any{"name": "t1"}, "anything": map[string]any{"goes": "here"}}}
	if _, err := s.Dynamic().Resource(v1).Create(ctx(t), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Dynamic().Resource(schema.GroupVersionResource{Group: "example.org", Version: "v2", Resource: "things"}).Get(ctx(t), "t1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAPIVersion() != "example.org/v2" {
		t.Errorf("apiVersion through v2 = %s", got.GetAPIVersion())
	}
	if v, _, _ := unstructured.NestedString(got.Object, "anything", "goes"); v != "here" {
		t.Errorf("preserved field lost: %v", got.Object)
	}
	_, err = s.Dynamic().Resource(schema.GroupVersionResource{Group: "example.org", Version: "v3", Resource: "things"}).Get(ctx(t), "t1", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("unserved v3: %v", err)
	}
	group, err := s.Clientset().Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range group.Groups {
		if g.Name != "example.org" {
			continue
		}
		var versions []string
		for _, v := range g.Versions {
			versions = append(versions, v.Version)
		}
		if strings.Join(versions, ",") != "v2,v1" || g.PreferredVersion.Version != "v2" {
			t.Errorf("example.org versions %v preferred %s, want [v2 v1] preferred v2", versions, g.PreferredVersion.Version)
		}
	}
	if out := s.MustKubectl(t, "get", "things"); !strings.Contains(out, "t1") {
		t.Errorf("kubectl get things:\n%s", out)
	}
}

// TestHelmChartWithCRD: helm installs a chart whose crds/ directory holds
// a definition and whose templates hold a custom resource of it.
func TestHelmChartWithCRD(t *testing.T) {
	s := startServer(t)
	helm := framework.NewHelm(t, framework.HelmV3(t), s.Kubeconfig())
	chart, err := filepath.Abs("testdata/chart")
	if err != nil {
		t.Fatal(err)
	}
	ns := framework.NewNamespace(t, s.Clientset(), "helm")
	helm.Must(t, "install", "demo", chart, "-n", ns, "--set", "colour=green")
	gadgets := schema.GroupVersionResource{Group: "helm.example.com", Version: "v1", Resource: "gadgets"}
	g, err := s.Dynamic().Resource(gadgets).Namespace(ns).Get(ctx(t), "demo-gadget", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if colour, _, _ := unstructured.NestedString(g.Object, "spec", "colour"); colour != "green" {
		t.Errorf("gadget colour %q", colour)
	}
}

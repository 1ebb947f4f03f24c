package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/test/framework"
)

// TestMetadataClient drives the PartialObjectMetadata transformation that
// controllers' metadata informers (the garbage collector's among them) use:
// get, list and an informer that syncs and sees changes.
func TestMetadataClient(t *testing.T) {
	s := framework.StartServer(t)
	cs := s.Clientset()
	ctx := context.Background()
	ns := newNamespace(t, cs)
	for i := 0; i < 3; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("m%d", i), Labels: map[string]string{"i": fmt.Sprint(i)}},
			Data: map[string]string{"big": "value"}}
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mc, err := metadata.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	one, err := mc.Resource(gvr).Namespace(ns).Get(ctx, "m1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if one.Name != "m1" || one.Labels["i"] != "1" || one.UID == "" || one.ResourceVersion == "" {
		t.Errorf("metadata get: %+v", one)
	}
	// The selector leaves out kube-root-ca.crt, which the root CA publisher
	// adds to every namespace.
	list, err := mc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "i"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 || list.ResourceVersion == "" {
		t.Fatalf("metadata list: %d items, rv %q", len(list.Items), list.ResourceVersion)
	}

	factory := metadatainformer.NewFilteredSharedInformerFactory(mc, 0, ns, nil)
	inf := factory.ForResource(gvr).Informer()
	added := make(chan string, 16)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			added <- m.Name
		}
	}})
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("metadata informer did not sync")
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.After(15 * time.Second)
	for !seen["late"] {
		select {
		case name := <-added:
			seen[name] = true
		case <-deadline:
			t.Fatalf("informer saw %v, never the object created after sync", seen)
		}
	}
	if !seen["m0"] || !seen["m1"] || !seen["m2"] {
		t.Errorf("informer initial objects: %v", seen)
	}
}

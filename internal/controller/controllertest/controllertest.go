// Package controllertest helps the unit tests of controllers: objects put
// in a fake API and in the informer caches a controller reads (without
// running the informers, so a test decides what the controller sees), and a
// fake API that names, identifies and versions what it creates as the real
// one does. It is for tests only.
package controllertest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
)

// Add puts objs in the fake API and in factory's caches.
func Add(t testing.TB, client *fake.Clientset, factory informers.SharedInformerFactory, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		if err := client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	Cache(t, factory, objs...)
}

// Cache puts objs in factory's caches, each in the informer of its kind (as
// an informer would after an add or update).
func Cache(t testing.TB, factory informers.SharedInformerFactory, objs ...runtime.Object) {
	t.Helper()
	for _, o := range objs {
		kinds, _, err := scheme.Scheme.ObjectKinds(o)
		if err != nil {
			t.Fatalf("caching %T: %v", o, err)
		}
		gvr, _ := meta.UnsafeGuessKindToResource(kinds[0])
		inf, err := factory.ForResource(gvr)
		if err != nil {
			t.Fatalf("caching %T: %v", o, err)
		}
		if err := inf.Informer().GetIndexer().Update(o); err != nil {
			t.Fatal(err)
		}
	}
}

// ServerNames has the fake API do what the real one does when objects of
// resource are written: names from generateName and uids on create,
// generation 1 on create and one more on every update, which keeps the
// uid.
func ServerNames(client *fake.Clientset, resource string) {
	var n atomic.Int64
	client.PrependReactor("create", resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		acc, err := meta.Accessor(a.(clienttesting.CreateAction).GetObject())
		if err != nil {
			return false, nil, nil
		}
		i := n.Add(1)
		if acc.GetName() == "" {
			acc.SetName(fmt.Sprintf("%s%05d", acc.GetGenerateName(), i))
		}
		acc.SetUID(types.UID(fmt.Sprintf("uid-%d", i)))
		acc.SetGeneration(1)
		return false, nil, nil
	})
	client.PrependReactor("update", resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.UpdateAction)
		acc, err := meta.Accessor(u.GetObject())
		if err != nil {
			return false, nil, nil
		}
		if old, err := client.Tracker().Get(u.GetResource(), acc.GetNamespace(), acc.GetName()); err == nil {
			if oldAcc, err := meta.Accessor(old); err == nil {
				acc.SetGeneration(oldAcc.GetGeneration() + 1)
				acc.SetUID(oldAcc.GetUID())
			}
		}
		return false, nil, nil
	})
}

package protection

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/controller/controllertest"
	"github.com/havre/havre/internal/volume"
)

const ns = "default"

var deleting = metav1.Now()

func claim(name string, deleted bool, finalizers ...string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Finalizers: finalizers}}
	if deleted {
		c.DeletionTimestamp = &deleting
	}
	return c
}

func pod(name, node string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func usesClaim(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v" + name,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
	}
}

func ephemeralVolume(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name,
			VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{}}}})
	}
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func forceDeleted(p *corev1.Pod) {
	p.DeletionTimestamp = &deleting
	p.DeletionGracePeriodSeconds = new(int64(0))
}

func gracefullyDeleting(p *corev1.Pod) {
	p.DeletionTimestamp = &deleting
	p.DeletionGracePeriodSeconds = new(int64(30))
}

// ownedBy makes the claim the pod's ephemeral volume.
func ownedBy(c *corev1.PersistentVolumeClaim, podName string) *corev1.PersistentVolumeClaim {
	c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: podName, UID: types.UID("uid-" + podName), Controller: new(true)}}
	return c
}

func TestPVCProtection(t *testing.T) {
	f := volume.PVCProtectionFinalizer
	for _, tc := range []struct {
		name string
		pvc  *corev1.PersistentVolumeClaim
		objs []runtime.Object
		// apiOnly objects are in the API, not yet in the cache.
		apiOnly []runtime.Object
		want    []string
	}{
		{name: "not deleted: finalizer added", pvc: claim("c", false), want: []string{f}},
		{name: "not deleted: finalizer kept", pvc: claim("c", false, "x.io/other", f), want: []string{"x.io/other", f}},
		{name: "deleted, unused: finalizer removed", pvc: claim("c", true, "x.io/other", f), want: []string{"x.io/other"}},
		{name: "deleted, used by a running pod", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("c"))}, want: []string{f}},
		{name: "deleted, used by a pod the cache does not have yet", pvc: claim("c", true, f), apiOnly: []runtime.Object{pod("p", "n1", usesClaim("c"))}, want: []string{f}},
		{name: "deleted, used by a pod being deleted gracefully", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("c"), gracefullyDeleting)}, want: []string{f}},
		{name: "deleted, pod of another claim", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("d"))}, want: nil},
		{name: "deleted, pod not scheduled", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "", usesClaim("c"))}, want: nil},
		{name: "deleted, pod succeeded", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("c"), phase(corev1.PodSucceeded))}, want: nil},
		{name: "deleted, pod failed", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("c"), phase(corev1.PodFailed))}, want: nil},
		{name: "deleted, pod force-deleted", pvc: claim("c", true, f), objs: []runtime.Object{pod("p", "n1", usesClaim("c"), forceDeleted)}, want: nil},
		{name: "deleted, the ephemeral volume of a running pod", pvc: ownedBy(claim("p-scratch", true, f), "p"),
			objs: []runtime.Object{pod("p", "n1", ephemeralVolume("scratch"))}, want: []string{f}},
		{name: "deleted, same name but not the pod's", pvc: claim("p-scratch", true, f),
			objs: []runtime.Object{pod("p", "n1", ephemeralVolume("scratch"))}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.apiOnly...)
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := NewPVCProtection(client, factory)
			if err != nil {
				t.Fatal(err)
			}
			controllertest.Add(t, client, factory, append(tc.objs, tc.pvc)...)
			if err := c.sync(context.Background(), ns+"/"+tc.pvc.Name); err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), tc.pvc.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Finalizers, tc.want) {
				t.Errorf("finalizers %v, want %v", got.Finalizers, tc.want)
			}
		})
	}
}

// TestPVCProtectionPodEvents: a pod update or deletion queues the claims
// it names, ephemeral ones included.
func TestPVCProtectionPodEvents(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewPVCProtection(client, factory)
	if err != nil {
		t.Fatal(err)
	}
	c.podChanged(cache.DeletedFinalStateUnknown{Key: ns + "/p", Obj: pod("p", "n1", usesClaim("data"), ephemeralVolume("scratch"))})
	var got []string
	for c.queue.Len() > 0 {
		key, _ := c.queue.Get()
		got = append(got, key)
		c.queue.Done(key)
	}
	if want := []string{ns + "/data", ns + "/p-scratch"}; !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
}

func TestPVProtection(t *testing.T) {
	f := volume.PVProtectionFinalizer
	pv := func(deleted bool, ph corev1.PersistentVolumePhase, finalizers ...string) *corev1.PersistentVolume {
		v := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "v", Finalizers: finalizers}, Status: corev1.PersistentVolumeStatus{Phase: ph}}
		if deleted {
			v.DeletionTimestamp = &deleting
		}
		return v
	}
	for _, tc := range []struct {
		name string
		pv   *corev1.PersistentVolume
		want []string
	}{
		{name: "not deleted: finalizer added", pv: pv(false, corev1.VolumeAvailable), want: []string{f}},
		{name: "not deleted: kept", pv: pv(false, corev1.VolumeBound, f), want: []string{f}},
		{name: "deleted, Bound: kept", pv: pv(true, corev1.VolumeBound, f), want: []string{f}},
		{name: "deleted, Released: removed", pv: pv(true, corev1.VolumeReleased, "x.io/other", f), want: []string{"x.io/other"}},
		{name: "deleted, Available: removed", pv: pv(true, corev1.VolumeAvailable, f), want: nil},
		{name: "deleted, Failed: removed", pv: pv(true, corev1.VolumeFailed, f), want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := NewPVProtection(client, factory)
			if err != nil {
				t.Fatal(err)
			}
			controllertest.Add(t, client, factory, tc.pv)
			if err := c.sync(context.Background(), "v"); err != nil {
				t.Fatal(err)
			}
			got, err := client.CoreV1().PersistentVolumes().Get(context.Background(), "v", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Finalizers, tc.want) {
				t.Errorf("finalizers %v, want %v", got.Finalizers, tc.want)
			}
		})
	}
}

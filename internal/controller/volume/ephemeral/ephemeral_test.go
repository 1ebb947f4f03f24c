package ephemeral

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/havre/havre/internal/controller/controllertest"
)

const ns = "default"

func template() *corev1.PersistentVolumeClaimTemplate {
	return &corev1.PersistentVolumeClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"note": "scratch"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: new("local"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func pod(volumes ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns, UID: "uid-p"}}
	for _, v := range volumes {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: v,
			VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: template()}}})
	}
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}})
	return p
}

func existing(name string, owner types.UID) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if owner != "" {
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", UID: owner, Controller: new(true)}}
	}
	return c
}

func TestSync(t *testing.T) {
	deleting := metav1.Now()
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		objs    []runtime.Object
		apiOnly []runtime.Object
		created []string // creates asked of the API
		err     bool
		events  []string
	}{
		{name: "claims made", pod: pod("scratch", "cache"), created: []string{"p-cache", "p-scratch"}},
		{name: "no ephemeral volume", pod: pod()},
		{name: "the pod's claim exists", pod: pod("scratch"), objs: []runtime.Object{existing("p-scratch", "uid-p")}},
		// Not in the cache: the create is tried, refused, and the claim read.
		{name: "the pod's claim is not in the cache yet", pod: pod("scratch"), apiOnly: []runtime.Object{existing("p-scratch", "uid-p")}, created: []string{"p-scratch"}},
		{name: "a claim of that name not the pod's", pod: pod("scratch"), objs: []runtime.Object{existing("p-scratch", "uid-other")}, err: true,
			events: []string{"Warning FailedBinding ephemeral volume scratch: PVC default/p-scratch was not created for pod default/p (pod is not owner)"}},
		{name: "an unowned claim of that name, not in the cache", pod: pod("scratch"), apiOnly: []runtime.Object{existing("p-scratch", "")}, err: true, created: []string{"p-scratch"},
			events: []string{"Warning FailedBinding ephemeral volume scratch: PVC default/p-scratch was not created for pod default/p (pod is not owner)"}},
		{name: "pod being deleted", pod: func() *corev1.Pod { p := pod("scratch"); p.DeletionTimestamp = &deleting; return p }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.apiOnly...)
			factory := informers.NewSharedInformerFactory(client, 0)
			recorder := record.NewFakeRecorder(10)
			c, err := New(client, factory, recorder)
			if err != nil {
				t.Fatal(err)
			}
			controllertest.Add(t, client, factory, append(tc.objs, tc.pod)...)
			err = c.sync(context.Background(), ns+"/p")
			if (err != nil) != tc.err {
				t.Fatalf("sync error %v, want error %v", err, tc.err)
			}
			var created []string
			for _, a := range client.Actions() {
				if a.GetVerb() != "create" {
					continue
				}
				pvc := a.(interface{ GetObject() runtime.Object }).GetObject().(*corev1.PersistentVolumeClaim)
				created = append(created, pvc.Name)
				ref := metav1.GetControllerOf(pvc)
				if ref == nil || ref.UID != "uid-p" || ref.Kind != "Pod" || ref.Name != "p" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
					t.Errorf("claim %s controller %+v, want pod p", pvc.Name, ref)
				}
				tmpl := template()
				if !equality.Semantic.DeepEqual(pvc.Spec, tmpl.Spec) || pvc.Labels["app"] != "web" || pvc.Annotations["note"] != "scratch" {
					t.Errorf("claim %s is not the template's: %+v", pvc.Name, pvc)
				}
			}
			slices.Sort(created)
			if !slices.Equal(created, tc.created) {
				t.Errorf("created %v, want %v", created, tc.created)
			}
			var events []string
			for len(recorder.Events) > 0 {
				events = append(events, <-recorder.Events)
			}
			if !slices.Equal(events, tc.events) {
				t.Errorf("events %q, want %q", events, tc.events)
			}
		})
	}
}

// TestHandlers: pods with ephemeral volumes are queued, unless being
// deleted; a deleted claim queues its owning pod.
func TestHandlers(t *testing.T) {
	client := fake.NewClientset()
	c, err := New(client, informers.NewSharedInformerFactory(client, 0), record.NewFakeRecorder(1))
	if err != nil {
		t.Fatal(err)
	}
	deleting := metav1.Now()
	gone := pod("scratch")
	gone.Name, gone.DeletionTimestamp = "gone", &deleting
	c.enqueuePod(pod())
	c.enqueuePod(gone)
	c.enqueuePod(pod("scratch"))
	c.claimDeleted(cache.DeletedFinalStateUnknown{Obj: func() *corev1.PersistentVolumeClaim {
		pvc := existing("q-scratch", "uid-q")
		pvc.OwnerReferences[0].Name = "q"
		return pvc
	}()})
	c.claimDeleted(existing("unowned", ""))
	var got []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		got = append(got, k)
		c.queue.Done(k)
	}
	if want := []string{ns + "/p", ns + "/q"}; !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
}

package api_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

// TestStorageAPI walks through what upstream's storage conformance specs
// (test/e2e/storage: csi_inline.go, csi_node.go, csistoragecapacity.go,
// volume_attachment.go, volumeattributesclass.go) do with the
// storage.k8s.io/v1 kinds that have no controller here: each subtest is
// named after its spec and makes its calls, plus checks of upstream's
// defaults and immutable fields.
func TestStorageAPI(t *testing.T) {
	s := startServer(t)
	cs, dyn := s.Clientset(), s.Dynamic()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, kubernetes.Interface, dynamic.Interface)
	}{
		{"should run through the lifecycle of a CSIDriver", testCSIDriverLifecycle},
		{"should support CSIStorageCapacities API operations", testCSIStorageCapacityOperations},
		{"should run through the lifecycle of a csinode", testCSINodeLifecycle},
		{"should run through the lifecycle of a VolumeAttachment", testVolumeAttachmentLifecycle},
		{"should apply changes to a volumeattachment status", testVolumeAttachmentStatus},
		{"should run through the lifecycle of a VolumeAttributesClass", testVolumeAttributesClassLifecycle},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cs, dyn) })
	}
}

// must fails t on err.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// rvLess reports whether resourceVersion a is older than b, comparing them
// as the decimal numbers the server issues, as upstream's specs do.
func rvLess(t *testing.T, a, b string) bool {
	t.Helper()
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		t.Fatalf("resourceVersions %q and %q are not numbers", a, b)
	}
	return x < y
}

// expectGone fails t unless get answers NotFound (or the object is being
// deleted), as the specs' "Confirm deletion" steps accept.
func expectGone[T metav1.Object](t *testing.T, what string, get func() (T, error)) {
	t.Helper()
	obj, err := get()
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Errorf("%s: want 404, got %v", what, err)
	case obj.GetDeletionTimestamp() == nil:
		t.Errorf("%s: still there and not being deleted", what)
	}
}

// expectNoneLeft waits until list finds no object: the specs poll for 30s.
func expectNoneLeft(t *testing.T, what string, list func() (int, error)) {
	t.Helper()
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		n, err := list()
		return n == 0, err
	}, "%s still listed", what)
}

// expectInvalid fails t unless err is a 422 naming field.
func expectInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want 422 Invalid on %s, got %v", field, err)
	}
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		if c.Field == field {
			return
		}
	}
	t.Errorf("422 without a cause on %s: %v", field, err)
}

func testCSIDriverLifecycle(t *testing.T, cs kubernetes.Interface, _ dynamic.Interface) {
	client := cs.StorageV1().CSIDrivers()
	unique := "csidriver-" + utilrand.String(5)
	lbls := map[string]string{"e2e-test": unique}
	policy := storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy
	driver1 := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "inline-driver-1-" + unique, Labels: lbls},
		Spec: storagev1.CSIDriverSpec{VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral},
			FSGroupPolicy: &policy}}
	driver2 := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "inline-driver-2-" + unique, Labels: lbls},
		Spec: storagev1.CSIDriverSpec{VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent,
			storagev1.VolumeLifecycleEphemeral}, FSGroupPolicy: &policy}}

	created1, err := client.Create(ctx(t), driver1, metav1.CreateOptions{})
	must(t, err, "creating the first CSIDriver")
	created2, err := client.Create(ctx(t), driver2, metav1.CreateOptions{})
	must(t, err, "creating the second CSIDriver")
	if created1.ResourceVersion == "" || created2.ResourceVersion == "" {
		t.Errorf("created drivers without resourceVersion: %q %q", created1.ResourceVersion, created2.ResourceVersion)
	}
	if _, err := client.Create(ctx(t), driver1, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("creating it again: want 409 AlreadyExists, got %v", err)
	}
	// Upstream's defaults fill what the spec left unset.
	spec := created1.Spec
	if !ptr.Deref(spec.AttachRequired, false) || ptr.Deref(spec.PodInfoOnMount, true) || ptr.Deref(spec.StorageCapacity, true) ||
		ptr.Deref(spec.RequiresRepublish, true) || ptr.Deref(spec.SELinuxMount, true) ||
		!slices.Equal(spec.VolumeLifecycleModes, driver1.Spec.VolumeLifecycleModes) {
		t.Errorf("created spec %+v, want upstream's defaults", spec)
	}

	got1, err := client.Get(ctx(t), created1.Name, metav1.GetOptions{})
	must(t, err, "getting the first CSIDriver")
	got2, err := client.Get(ctx(t), created2.Name, metav1.GetOptions{})
	must(t, err, "getting the second CSIDriver")
	if got1.UID != created1.UID || got2.UID != created2.UID {
		t.Errorf("got UIDs %s %s, want %s %s", got1.UID, got2.UID, created1.UID, created2.UID)
	}

	payload := `{"metadata":{"labels":{"` + created2.Name + `":"patched"}}}`
	patched, err := client.Patch(ctx(t), created2.Name, types.StrategicMergePatchType, []byte(payload), metav1.PatchOptions{})
	must(t, err, "patching the CSIDriver")
	if patched.Labels[created2.Name] != "patched" || !rvLess(t, created2.ResourceVersion, patched.ResourceVersion) {
		t.Errorf("patched labels %v, resourceVersion %s after %s", patched.Labels, patched.ResourceVersion, created2.ResourceVersion)
	}

	var updated *storagev1.CSIDriver
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := client.Get(ctx(t), created2.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Labels[created2.Name] = "updated"
		updated, err = client.Update(ctx(t), d, metav1.UpdateOptions{})
		return err
	}), "updating the CSIDriver")
	if updated.Labels[created2.Name] != "updated" {
		t.Errorf("updated labels %v", updated.Labels)
	}
	// attachRequired and volumeLifecycleModes are immutable.
	bad := updated.DeepCopy()
	bad.Spec.AttachRequired = ptr.To(false)
	_, err = client.Update(ctx(t), bad, metav1.UpdateOptions{})
	expectInvalid(t, err, "spec.attachedRequired")

	list, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: labels.SelectorFromSet(lbls).String()})
	must(t, err, "listing CSIDrivers")
	if len(list.Items) != 2 {
		t.Errorf("listed %d CSIDrivers, want 2", len(list.Items))
	}

	must(t, client.Delete(ctx(t), created1.Name, metav1.DeleteOptions{}), "deleting the first CSIDriver")
	expectGone(t, "first CSIDriver", func() (*storagev1.CSIDriver, error) { return client.Get(ctx(t), created1.Name, metav1.GetOptions{}) })

	must(t, client.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: created2.Name + "=updated"}),
		"deleting the CSIDrivers by collection")
	expectGone(t, "second CSIDriver", func() (*storagev1.CSIDriver, error) { return client.Get(ctx(t), created2.Name, metav1.GetOptions{}) })
}

func testCSIStorageCapacityOperations(t *testing.T, cs kubernetes.Interface, _ dynamic.Interface) {
	ns := newNamespace(t, cs)
	client, clientAll := cs.StorageV1().CSIStorageCapacities(ns), cs.StorageV1().CSIStorageCapacities("")
	unique := "csc-" + utilrand.String(5)
	selector := "test=" + unique
	newCSC := func(suffix string) *storagev1.CSIStorageCapacity {
		return &storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: unique + suffix, Labels: map[string]string{"test": unique}},
			StorageClassName: "e2e.example.com"}
	}

	// Discovery: the group, its version and the resource are listed.
	groups, err := cs.Discovery().ServerGroups()
	must(t, err, "getting /apis")
	i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == storagev1.GroupName })
	if i < 0 || !slices.ContainsFunc(groups.Groups[i].Versions, func(v metav1.GroupVersionForDiscovery) bool { return v.Version == "v1" }) {
		t.Fatalf("/apis lists no storage.k8s.io/v1")
	}
	resources, err := cs.Discovery().ServerResourcesForGroupVersion("storage.k8s.io/v1")
	must(t, err, "getting /apis/storage.k8s.io/v1")
	if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "csistoragecapacities" }) {
		t.Fatalf("/apis/storage.k8s.io/v1 lists no csistoragecapacities")
	}

	created, err := client.Create(ctx(t), newCSC("-csc1"), metav1.CreateOptions{})
	must(t, err, "creating")
	if _, err := client.Create(ctx(t), newCSC("-csc1"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("creating it again: want 409 AlreadyExists, got %v", err)
	}
	_, err = client.Create(ctx(t), newCSC("-csc2"), metav1.CreateOptions{})
	must(t, err, "creating the second")

	w, err := client.Watch(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "watching in the namespace")
	defer w.Stop()
	wAll, err := clientAll.Watch(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "watching across namespaces")
	defer wAll.Stop()
	_, err = client.Create(ctx(t), newCSC("-csc3"), metav1.CreateOptions{})
	must(t, err, "creating the third")

	got, err := client.Get(ctx(t), created.Name, metav1.GetOptions{})
	must(t, err, "getting")
	if got.UID != created.UID || got.ResourceVersion == "" {
		t.Errorf("got UID %s resourceVersion %q, want UID %s", got.UID, got.ResourceVersion, created.UID)
	}
	list, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "listing in the namespace")
	listAll, err := clientAll.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "listing across namespaces")
	if len(list.Items) != 3 || len(listAll.Items) != 3 {
		t.Errorf("listed %d in the namespace, %d across namespaces, want 3 and 3", len(list.Items), len(listAll.Items))
	}

	patched, err := client.Patch(ctx(t), created.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"patched":"true"}}}`),
		metav1.PatchOptions{})
	must(t, err, "patching")
	if patched.Annotations["patched"] != "true" || !rvLess(t, created.ResourceVersion, patched.ResourceVersion) {
		t.Errorf("patched annotations %v, resourceVersion %s after %s", patched.Annotations, patched.ResourceVersion, created.ResourceVersion)
	}
	toUpdate := patched.DeepCopy()
	toUpdate.Annotations["updated"] = "true"
	updated, err := client.Update(ctx(t), toUpdate, metav1.UpdateOptions{})
	must(t, err, "updating")
	if updated.Annotations["updated"] != "true" {
		t.Errorf("updated annotations %v", updated.Annotations)
	}
	// The class a capacity is for is immutable.
	bad := updated.DeepCopy()
	bad.StorageClassName = "other.example.com"
	_, err = client.Update(ctx(t), bad, metav1.UpdateOptions{})
	expectInvalid(t, err, "storageClassName")

	for _, wc := range []struct {
		name string
		w    watch.Interface
	}{{"in the namespace", w}, {"across namespaces", wAll}} {
		expectWatchEvents(t, wc.name, wc.w)
	}

	must(t, client.Delete(ctx(t), created.Name, metav1.DeleteOptions{}), "deleting")
	expectGone(t, "deleted capacity", func() (*storagev1.CSIStorageCapacity, error) {
		return client.Get(ctx(t), created.Name, metav1.GetOptions{})
	})
	list, err = client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "listing after deleting one")
	if len(list.Items) != 2 {
		t.Errorf("%d capacities left, want 2", len(list.Items))
	}
	must(t, client.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}), "deleting a collection")
	list, err = client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "listing after deleting the collection")
	if len(list.Items) != 0 {
		t.Errorf("%d capacities left after deleting the collection, want 0", len(list.Items))
	}
}

// expectWatchEvents reads w until it has seen the third capacity added and
// the first one patched and updated, failing t if that takes over a minute.
func expectWatchEvents(t *testing.T, name string, w watch.Interface) {
	t.Helper()
	timeout := time.After(time.Minute)
	for sawAdded, sawPatched, sawUpdated := false, false, false; !sawAdded || !sawPatched || !sawUpdated; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("%s: watch closed", name)
			}
			c, isCSC := ev.Object.(*storagev1.CSIStorageCapacity)
			if !isCSC {
				t.Fatalf("%s: %s event of a %T", name, ev.Type, ev.Object)
			}
			switch ev.Type {
			case watch.Added:
				sawAdded = true
			case watch.Modified:
				sawPatched = sawPatched || c.Annotations["patched"] == "true"
				sawUpdated = sawUpdated || c.Annotations["updated"] == "true"
			}
		case <-timeout:
			t.Fatalf("%s: no added, patched and updated events within a minute", name)
		}
	}
}

func testCSINodeLifecycle(t *testing.T, cs kubernetes.Interface, _ dynamic.Interface) {
	client := cs.StorageV1().CSINodes()
	first, err := client.Create(ctx(t), &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "e2e-csinode-" + utilrand.String(5)}},
		metav1.CreateOptions{})
	must(t, err, "creating the first CSINode")
	if first.ResourceVersion == "" {
		t.Error("created CSINode without resourceVersion")
	}
	got, err := client.Get(ctx(t), first.Name, metav1.GetOptions{})
	must(t, err, "getting the first CSINode")
	if got.Name != first.Name {
		t.Errorf("got %q, want %q", got.Name, first.Name)
	}

	payload := `{"metadata":{"labels":{"` + first.Name + `":"patched"}}}`
	patched, err := client.Patch(ctx(t), first.Name, types.StrategicMergePatchType, []byte(payload), metav1.PatchOptions{})
	must(t, err, "patching the first CSINode")
	if patched.Labels[first.Name] != "patched" || !rvLess(t, first.ResourceVersion, patched.ResourceVersion) {
		t.Errorf("patched labels %v, resourceVersion %s after %s", patched.Labels, patched.ResourceVersion, first.ResourceVersion)
	}
	patchedSelector := labels.Set{first.Name: "patched"}.AsSelector().String()
	list, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: patchedSelector})
	must(t, err, "listing CSINodes")
	if len(list.Items) != 1 {
		t.Errorf("listed %d CSINodes, want 1", len(list.Items))
	}
	must(t, client.Delete(ctx(t), first.Name, metav1.DeleteOptions{}), "deleting the first CSINode")
	expectNoneLeft(t, "first CSINode", func() (int, error) {
		l, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: patchedSelector})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	})

	second, err := client.Create(ctx(t), &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "e2e-csinode-" + utilrand.String(5)},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "e2e.example.com", NodeID: "node-1",
			Allocatable: &storagev1.VolumeNodeResources{Count: ptr.To[int32](8)}}}}}, metav1.CreateOptions{})
	must(t, err, "creating the replacement CSINode")
	got, err = client.Get(ctx(t), second.Name, metav1.GetOptions{})
	must(t, err, "getting the replacement CSINode")
	if got.Name != second.Name {
		t.Errorf("got %q, want %q", got.Name, second.Name)
	}
	var updated *storagev1.CSINode
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := client.Get(ctx(t), second.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Labels = map[string]string{second.Name: "updated"}
		// A driver's volume limit may change (MutableCSINodeAllocatableCount).
		n.Spec.Drivers[0].Allocatable.Count = ptr.To[int32](16)
		updated, err = client.Update(ctx(t), n, metav1.UpdateOptions{})
		return err
	}), "updating the replacement CSINode")
	if updated.Labels[second.Name] != "updated" || *updated.Spec.Drivers[0].Allocatable.Count != 16 {
		t.Errorf("updated labels %v, drivers %+v", updated.Labels, updated.Spec.Drivers)
	}
	// The rest of a registered driver is immutable.
	bad := updated.DeepCopy()
	bad.Spec.Drivers[0].NodeID = "node-2"
	_, err = client.Update(ctx(t), bad, metav1.UpdateOptions{})
	expectInvalid(t, err, "spec.drivers")

	updatedSelector := labels.Set{second.Name: "updated"}.AsSelector().String()
	must(t, client.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: updatedSelector}),
		"deleting the CSINodes by collection")
	expectNoneLeft(t, "replacement CSINode", func() (int, error) {
		l, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: updatedSelector})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	})
}

// newVolumeAttachment is the attachment upstream's specs create: a
// PersistentVolume's on a node, by a fictional attacher.
func newVolumeAttachment() *storagev1.VolumeAttachment {
	unique := "e2e-" + utilrand.String(5)
	return &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va-" + unique},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "e2e-test.storage.k8s.io", NodeName: "e2e-node",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("pv-" + unique)}}}
}

func testVolumeAttachmentLifecycle(t *testing.T, cs kubernetes.Interface, _ dynamic.Interface) {
	client := cs.StorageV1().VolumeAttachments()
	create := func() *storagev1.VolumeAttachment {
		va, err := client.Create(ctx(t), newVolumeAttachment(), metav1.CreateOptions{})
		must(t, err, "creating a VolumeAttachment")
		return va
	}
	first := create()
	got, err := client.Get(ctx(t), first.Name, metav1.GetOptions{})
	must(t, err, "getting the VolumeAttachment")
	if got.Name != first.Name || got.ResourceVersion == "" {
		t.Errorf("got %q resourceVersion %q, want %q", got.Name, got.ResourceVersion, first.Name)
	}
	payload := `{"metadata":{"labels":{"` + got.Name + `":"patched"}}}`
	patched, err := client.Patch(ctx(t), got.Name, types.MergePatchType, []byte(payload), metav1.PatchOptions{})
	must(t, err, "patching the VolumeAttachment")
	if patched.Labels[got.Name] != "patched" || !rvLess(t, got.ResourceVersion, patched.ResourceVersion) {
		t.Errorf("patched labels %v, resourceVersion %s after %s", patched.Labels, patched.ResourceVersion, got.ResourceVersion)
	}
	// The spec is immutable.
	bad := patched.DeepCopy()
	bad.Spec.NodeName = "other-node"
	_, err = client.Update(ctx(t), bad, metav1.UpdateOptions{})
	expectInvalid(t, err, "spec")

	patchedSelector := labels.Set{patched.Name: "patched"}.AsSelector().String()
	list, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: patchedSelector})
	must(t, err, "listing VolumeAttachments")
	if len(list.Items) != 1 {
		t.Errorf("listed %d VolumeAttachments, want 1", len(list.Items))
	}
	must(t, client.Delete(ctx(t), first.Name, metav1.DeleteOptions{}), "deleting the VolumeAttachment")
	countVA := func(selector string) func() (int, error) {
		return func() (int, error) {
			l, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}
	}
	expectNoneLeft(t, "first VolumeAttachment", countVA(patchedSelector))

	updatedSelector := labels.Set{"va-e2e": "updated"}.AsSelector().String()
	for range 2 {
		va := create()
		var updated *storagev1.VolumeAttachment
		must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := client.Get(ctx(t), va.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Labels = map[string]string{"va-e2e": "updated"}
			updated, err = client.Update(ctx(t), cur, metav1.UpdateOptions{})
			return err
		}), "updating a VolumeAttachment")
		if updated.Labels["va-e2e"] != "updated" {
			t.Errorf("updated labels %v", updated.Labels)
		}
	}
	must(t, client.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: updatedSelector}),
		"deleting the VolumeAttachments by collection")
	expectNoneLeft(t, "updated VolumeAttachments", countVA(updatedSelector))
}

func testVolumeAttachmentStatus(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface) {
	client := cs.StorageV1().VolumeAttachments()
	// The status a client sends on create is dropped: only the attacher
	// writes it, through the status subresource.
	va := newVolumeAttachment()
	va.Status.Attached = true
	created, err := client.Create(ctx(t), va, metav1.CreateOptions{})
	must(t, err, "creating the VolumeAttachment")
	if created.Name != va.Name || created.Status.Attached {
		t.Errorf("created %q attached %v, want %q not attached", created.Name, created.Status.Attached, va.Name)
	}
	payload := `{"metadata":{"labels":{"` + created.Name + `":"patched"}}}`
	patched, err := client.Patch(ctx(t), created.Name, types.MergePatchType, []byte(payload), metav1.PatchOptions{})
	must(t, err, "patching the VolumeAttachment")
	if patched.Labels[created.Name] != "patched" {
		t.Errorf("patched labels %v", patched.Labels)
	}
	patchedSelector := labels.Set{patched.Name: "patched"}.AsSelector().String()

	gvr := schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "volumeattachments"}
	u, err := dyn.Resource(gvr).Get(ctx(t), patched.Name, metav1.GetOptions{}, "status")
	must(t, err, "reading the status")
	read := &storagev1.VolumeAttachment{}
	must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), read), "converting the status")
	if read.Status.Attached {
		t.Error("status read as attached before any status write")
	}

	statusPatched, err := client.Patch(ctx(t), patched.Name, types.MergePatchType, []byte(`{"status":{"attached":true}}`),
		metav1.PatchOptions{}, "status")
	must(t, err, "patching the status")
	if !statusPatched.Status.Attached {
		t.Error("status patch did not set attached")
	}
	// A status write leaves the spec alone.
	withSpec := statusPatched.DeepCopy()
	withSpec.Spec.NodeName = "other-node"
	withSpec.Status.AttachmentMetadata = map[string]string{"lun": "3"}
	afterStatus, err := client.UpdateStatus(ctx(t), withSpec, metav1.UpdateOptions{})
	must(t, err, "updating the status with a changed spec")
	if afterStatus.Spec.NodeName != "e2e-node" || afterStatus.Status.AttachmentMetadata["lun"] != "3" {
		t.Errorf("after a status update: node %q metadata %v, want the spec kept and the status written",
			afterStatus.Spec.NodeName, afterStatus.Status.AttachmentMetadata)
	}

	var updated *storagev1.VolumeAttachment
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := client.Get(ctx(t), patched.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Attached = false
		updated, err = client.UpdateStatus(ctx(t), cur, metav1.UpdateOptions{})
		return err
	}), "updating the status")
	if updated.Status.Attached {
		t.Error("status update did not clear attached")
	}
	// A negative error code is refused.
	badStatus := updated.DeepCopy()
	badStatus.Status.AttachError = &storagev1.VolumeError{Message: "boom", ErrorCode: ptr.To[int32](-1)}
	_, err = client.UpdateStatus(ctx(t), badStatus, metav1.UpdateOptions{})
	expectInvalid(t, err, "status.attachError.errorCode")

	must(t, client.Delete(ctx(t), created.Name, metav1.DeleteOptions{}), "deleting the VolumeAttachment")
	expectNoneLeft(t, "VolumeAttachment", func() (int, error) {
		l, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: patchedSelector})
		if err != nil {
			return 0, err
		}
		return len(l.Items), nil
	})
}

func testVolumeAttributesClassLifecycle(t *testing.T, cs kubernetes.Interface, dyn dynamic.Interface) {
	client := cs.StorageV1().VolumeAttributesClasses()
	// kubectl knows the resource as "vac", as upstream's.
	resources, err := cs.Discovery().ServerResourcesForGroupVersion("storage.k8s.io/v1")
	must(t, err, "getting /apis/storage.k8s.io/v1")
	if i := slices.IndexFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "volumeattributesclasses" }); i < 0 ||
		!slices.Equal(resources.APIResources[i].ShortNames, []string{"vac"}) {
		t.Errorf("volumeattributesclasses not listed with short name vac")
	}
	newVAC := func(prefix string) *storagev1.VolumeAttributesClass {
		return &storagev1.VolumeAttributesClass{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix},
			DriverName: "e2e-fake-csi-driver", Parameters: map[string]string{"foo": "bar"}}
	}
	created, err := client.Create(ctx(t), newVAC("e2e-"), metav1.CreateOptions{})
	must(t, err, "creating a VolumeAttributesClass")
	got, err := client.Get(ctx(t), created.Name, metav1.GetOptions{})
	must(t, err, "getting the VolumeAttributesClass")
	payload := `{"metadata":{"labels":{"` + got.Name + `":"patched"}}}`
	patched, err := client.Patch(ctx(t), got.Name, types.StrategicMergePatchType, []byte(payload), metav1.PatchOptions{})
	must(t, err, "patching the VolumeAttributesClass")
	if patched.Labels[got.Name] != "patched" {
		t.Errorf("patched labels %v", patched.Labels)
	}
	must(t, client.Delete(ctx(t), patched.Name, metav1.DeleteOptions{}), "deleting the VolumeAttributesClass")
	countVAC := func(selector string) func() (int, error) {
		return func() (int, error) {
			l, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}
	}
	expectNoneLeft(t, "VolumeAttributesClass", countVAC(labels.Set{patched.Name: "patched"}.AsSelector().String()))

	replacement, err := client.Create(ctx(t), newVAC("e2e-v2-"), metav1.CreateOptions{})
	must(t, err, "creating the replacement VolumeAttributesClass")
	var updated *storagev1.VolumeAttributesClass
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := client.Get(ctx(t), replacement.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Labels = map[string]string{replacement.Name: "updated"}
		updated, err = client.Update(ctx(t), c, metav1.UpdateOptions{})
		return err
	}), "updating the VolumeAttributesClass")
	if updated.Labels[replacement.Name] != "updated" {
		t.Errorf("updated labels %v", updated.Labels)
	}
	// Driver and parameters are immutable; "vac" names the resource.
	bad := updated.DeepCopy()
	bad.Parameters["foo"] = "baz"
	_, err = client.Update(ctx(t), bad, metav1.UpdateOptions{})
	expectInvalid(t, err, "parameters")
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "volumeattributesclasses"}).
		Create(ctx(t), &unstructured.Unstructured{Object: map[string]any{"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttributesClass",
			"metadata": map[string]any{"generateName": "e2e-empty-"}, "driverName": "e2e-fake-csi-driver"}}, metav1.CreateOptions{}); err != nil {
		expectInvalid(t, err, "parameters")
	} else {
		t.Error("a VolumeAttributesClass without parameters was created")
	}

	selector := labels.Set{replacement.Name: "updated"}.AsSelector().String()
	list, err := client.List(ctx(t), metav1.ListOptions{LabelSelector: selector})
	must(t, err, "listing VolumeAttributesClasses")
	if len(list.Items) != 1 {
		t.Errorf("listed %d VolumeAttributesClasses, want 1", len(list.Items))
	}
	must(t, client.DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}),
		"deleting the VolumeAttributesClasses by collection")
	expectNoneLeft(t, "replacement VolumeAttributesClass", countVAC(selector))
}

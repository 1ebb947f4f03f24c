package persistentvolume

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/havre/havre/internal/controller/controllertest"
	"github.com/havre/havre/internal/volume"
)

const ns = "default"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// Objects of the tests, built with options.

func pv(name, size string, opts ...func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
	v := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			VolumeMode:                    new(corev1.PersistentVolumeFilesystem),
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

func pvc(name, size string, opts ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: new(""),
			VolumeMode:       new(corev1.PersistentVolumeFilesystem),
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func class(name, provisioner string, mode storagev1.VolumeBindingMode, opts ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0)},
		Provisioner:       provisioner,
		ReclaimPolicy:     new(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: &mode,
	}
	for _, o := range opts {
		o(sc)
	}
	return sc
}

func localClass() *storagev1.StorageClass {
	return class(volume.DefaultClass, volume.Provisioner, storagev1.VolumeBindingWaitForFirstConsumer, func(sc *storagev1.StorageClass) {
		sc.Annotations = map[string]string{volume.AnnDefaultClass: "true"}
		sc.AllowVolumeExpansion = new(true)
	})
}

func pvClass(c string) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Spec.StorageClassName = c }
}
func pvModes(m ...corev1.PersistentVolumeAccessMode) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Spec.AccessModes = m }
}
func pvBlock(v *corev1.PersistentVolume) { v.Spec.VolumeMode = new(corev1.PersistentVolumeBlock) }
func pvLabels(k, val string) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Labels = map[string]string{k: val} }
}
func pvAnn(k, val string) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { metav1.SetMetaDataAnnotation(&v.ObjectMeta, k, val) }
}
func pvPhase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Status.Phase = p }
}
func pvReclaim(p corev1.PersistentVolumeReclaimPolicy) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) { v.Spec.PersistentVolumeReclaimPolicy = p }
}

// pvRef binds the volume to claim name with uid ("" for a pre-binding).
func pvRef(name, uid string) func(*corev1.PersistentVolume) {
	return func(v *corev1.PersistentVolume) {
		v.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name, UID: types.UID(uid)}
	}
}

func pvcClass(c *string) func(*corev1.PersistentVolumeClaim) {
	return func(v *corev1.PersistentVolumeClaim) { v.Spec.StorageClassName = c }
}
func pvcVolume(name string) func(*corev1.PersistentVolumeClaim) {
	return func(v *corev1.PersistentVolumeClaim) { v.Spec.VolumeName = name }
}
func pvcAnn(k, val string) func(*corev1.PersistentVolumeClaim) {
	return func(v *corev1.PersistentVolumeClaim) { metav1.SetMetaDataAnnotation(&v.ObjectMeta, k, val) }
}
func pvcSelector(k, val string) func(*corev1.PersistentVolumeClaim) {
	return func(v *corev1.PersistentVolumeClaim) {
		v.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{k: val}}
	}
}

// pvcBound is a claim the controller bound to volume, with size capacity.
func pvcBound(volumeName, size string) func(*corev1.PersistentVolumeClaim) {
	return func(v *corev1.PersistentVolumeClaim) {
		v.Spec.VolumeName = volumeName
		metav1.SetMetaDataAnnotation(&v.ObjectMeta, volume.AnnBindCompleted, "yes")
		metav1.SetMetaDataAnnotation(&v.ObjectMeta, volume.AnnBoundByController, "yes")
		v.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}
	}
}

func unscheduledPod(name, claim string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{{
		Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}}}
}

// world is a controller on a fake API holding objs, its caches filled.
type world struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	recorder *record.FakeRecorder
}

func newWorld(t *testing.T, objs ...runtime.Object) *world {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := record.NewFakeRecorder(100)
	c, err := New(client, factory, recorder, testingclock.NewFakePassiveClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Add(t, client, factory, objs...)
	return &world{t: t, c: c, client: client, recorder: recorder}
}

func (w *world) pv(name string) *corev1.PersistentVolume {
	w.t.Helper()
	v, err := w.client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) pvc(name string) *corev1.PersistentVolumeClaim {
	w.t.Helper()
	v, err := w.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) events() []string {
	var out []string
	for {
		select {
		case e := <-w.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Expectations.

type volumeWant struct {
	name    string
	phase   corev1.PersistentVolumePhase
	claim   string // claimRef name, "" for none
	uid     string
	byCtrl  bool // bound-by-controller
	message string
}

type claimWant struct {
	name      string
	phase     corev1.PersistentVolumeClaimPhase
	volume    string
	annots    []string // annotation keys that must be there
	noAnnots  []string // and must not
	capacity  string
	className *string
}

func (w *world) checkVolume(want volumeWant) {
	w.t.Helper()
	v := w.pv(want.name)
	if v.Status.Phase != want.phase {
		w.t.Errorf("volume %s phase %s, want %s", want.name, v.Status.Phase, want.phase)
	}
	claim, uid := "", ""
	if v.Spec.ClaimRef != nil {
		claim, uid = v.Spec.ClaimRef.Name, string(v.Spec.ClaimRef.UID)
	}
	if claim != want.claim || uid != want.uid {
		w.t.Errorf("volume %s bound to %q (uid %q), want %q (uid %q)", want.name, claim, uid, want.claim, want.uid)
	}
	if got := metav1.HasAnnotation(v.ObjectMeta, volume.AnnBoundByController); got != want.byCtrl {
		w.t.Errorf("volume %s bound-by-controller %v, want %v", want.name, got, want.byCtrl)
	}
	if v.Status.Message != want.message {
		w.t.Errorf("volume %s message %q, want %q", want.name, v.Status.Message, want.message)
	}
}

func (w *world) checkClaim(want claimWant) {
	w.t.Helper()
	c := w.pvc(want.name)
	if c.Status.Phase != want.phase {
		w.t.Errorf("claim %s phase %s, want %s", want.name, c.Status.Phase, want.phase)
	}
	if c.Spec.VolumeName != want.volume {
		w.t.Errorf("claim %s volumeName %q, want %q", want.name, c.Spec.VolumeName, want.volume)
	}
	for _, k := range want.annots {
		if !metav1.HasAnnotation(c.ObjectMeta, k) {
			w.t.Errorf("claim %s lacks annotation %s: %v", want.name, k, c.Annotations)
		}
	}
	for _, k := range want.noAnnots {
		if metav1.HasAnnotation(c.ObjectMeta, k) {
			w.t.Errorf("claim %s has annotation %s: %v", want.name, k, c.Annotations)
		}
	}
	capacity := c.Status.Capacity[corev1.ResourceStorage]
	if want.capacity != "" && capacity.Cmp(resource.MustParse(want.capacity)) != 0 || want.capacity == "" && !capacity.IsZero() {
		w.t.Errorf("claim %s capacity %s, want %q", want.name, capacity.String(), want.capacity)
	}
	if want.className != nil && (c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != *want.className) {
		w.t.Errorf("claim %s class %v, want %s", want.name, c.Spec.StorageClassName, *want.className)
	}
}

var (
	bound  = []string{volume.AnnBindCompleted, volume.AnnBoundByController}
	unset  = []string{volume.AnnBindCompleted, volume.AnnBoundByController, volume.AnnStorageProvisioner}
	byUser = []string{volume.AnnBoundByController}
)

const externalWaiting = "Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner 'havre.io/local' " +
	"or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."

// TestSyncClaim syncs claim "c" once.
func TestSyncClaim(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		err     string
		volumes []volumeWant
		claims  []claimWant
		events  []string
	}{
		{
			name: "the smallest matching volume wins",
			objs: []runtime.Object{pv("big", "10Gi"), pv("fit", "2Gi"), pv("small", "1Gi"), pvc("c", "1500Mi")},
			volumes: []volumeWant{{name: "fit", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true},
				{name: "big", phase: corev1.VolumeAvailable}, {name: "small", phase: corev1.VolumeAvailable}},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "fit", annots: bound, capacity: "2Gi"}},
		},
		{
			name:   "access modes must be offered",
			objs:   []runtime.Object{pv("ro", "2Gi", pvModes(corev1.ReadOnlyMany)), pvc("c", "1Gi")},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events: []string{"Normal FailedBinding no persistent volumes available for this claim and no storage class is set"},
		},
		{
			name: "fewer access modes win over size",
			objs: []runtime.Object{pv("shared", "2Gi", pvModes(corev1.ReadWriteOnce, corev1.ReadWriteMany)), pv("rwo", "10Gi"), pvc("c", "1Gi")},
			volumes: []volumeWant{{name: "rwo", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true},
				{name: "shared", phase: corev1.VolumeAvailable}},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "rwo", annots: bound, capacity: "10Gi"}},
		},
		{
			name:    "volume mode must match",
			objs:    []runtime.Object{pv("block", "2Gi", pvBlock), pvc("c", "1Gi")},
			volumes: []volumeWant{{name: "block", phase: corev1.VolumeAvailable}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events:  []string{"Normal FailedBinding no persistent volumes available for this claim and no storage class is set"},
		},
		{
			name: "storage class must match",
			objs: []runtime.Object{pv("other", "2Gi", pvClass("other")), pv("mine", "5Gi", pvClass("manual")),
				class("manual", "x.io/p", storagev1.VolumeBindingImmediate), pvc("c", "1Gi", pvcClass(new("manual")))},
			volumes: []volumeWant{{name: "mine", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true}, {name: "other", phase: corev1.VolumeAvailable}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "mine", annots: bound, capacity: "5Gi"}},
		},
		{
			name: "label selector",
			objs: []runtime.Object{pv("plain", "1Gi"), pv("ssd", "3Gi", pvLabels("disk", "ssd")), pvc("c", "1Gi", pvcSelector("disk", "ssd"))},
			volumes: []volumeWant{{name: "ssd", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true},
				{name: "plain", phase: corev1.VolumeAvailable}},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "ssd", annots: bound, capacity: "3Gi"}},
		},
		{
			name: "the claim names its volume",
			objs: []runtime.Object{pv("small", "1Gi"), pv("named", "8Gi"), pvc("c", "1Gi", pvcVolume("named"))},
			volumes: []volumeWant{{name: "named", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true},
				{name: "small", phase: corev1.VolumeAvailable}},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "named", annots: []string{volume.AnnBindCompleted}, noAnnots: byUser, capacity: "8Gi"}},
		},
		{
			name:   "the claim names a missing volume",
			objs:   []runtime.Object{pv("other", "1Gi"), pvc("c", "1Gi", pvcVolume("missing"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, volume: "missing", noAnnots: unset}},
		},
		{
			name:    "the claim names a volume too small",
			objs:    []runtime.Object{pv("tiny", "1Mi"), pvc("c", "1Gi", pvcVolume("tiny"))},
			volumes: []volumeWant{{name: "tiny", phase: corev1.VolumeAvailable}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimPending, volume: "tiny", noAnnots: unset}},
			events:  []string{`Warning VolumeMismatch Cannot bind to requested volume "tiny": requested PV is too small`},
		},
		{
			name:   "the claim names a volume bound elsewhere",
			objs:   []runtime.Object{pv("taken", "1Gi", pvRef("other", "uid-other"), pvPhase(corev1.VolumeBound)), pvc("c", "1Gi", pvcVolume("taken"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, volume: "taken", noAnnots: unset}},
		},
		{
			name: "a volume pre-bound to the claim wins over a smaller match",
			objs: []runtime.Object{pv("small", "1Gi"), pv("prebound", "9Gi", pvRef("c", "")), pvc("c", "1Gi")},
			volumes: []volumeWant{{name: "prebound", phase: corev1.VolumeBound, claim: "c", uid: "uid-c"},
				{name: "small", phase: corev1.VolumeAvailable}},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "prebound", annots: bound, capacity: "9Gi"}},
		},
		{
			name:    "WaitForFirstConsumer: no pod yet; unbound volumes are not taken",
			objs:    []runtime.Object{localClass(), pv("free", "5Gi", pvClass("local")), pvc("c", "1Gi", pvcClass(new("local")))},
			volumes: []volumeWant{{name: "free", phase: corev1.VolumeAvailable}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events:  []string{"Normal WaitForFirstConsumer waiting for first consumer to be created before binding"},
		},
		{
			name: "WaitForFirstConsumer: pods not scheduled yet",
			objs: []runtime.Object{localClass(), pvc("c", "1Gi", pvcClass(new("local"))), unscheduledPod("web-1", "c"), unscheduledPod("web-0", "c"),
				unscheduledPod("other", "d")},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events: []string{"Normal WaitForPodScheduled waiting for pods web-0,web-1 to be scheduled"},
		},
		{
			name:   "WaitForFirstConsumer: node selected, handed to the provisioner",
			objs:   []runtime.Object{localClass(), pvc("c", "1Gi", pvcClass(new("local")), pvcAnn(volume.AnnSelectedNode, "n1"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, annots: []string{volume.AnnStorageProvisioner, volume.AnnBetaStorageProvisioner}}},
			events: []string{externalWaiting},
		},
		{
			name: "WaitForFirstConsumer: the provisioned volume is bound",
			objs: []runtime.Object{localClass(), pvc("c", "1Gi", pvcClass(new("local")), pvcAnn(volume.AnnSelectedNode, "n1")),
				pv("pvc-c", "1Gi", pvClass("local"), pvRef("c", "uid-c"), pvAnn(volume.AnnProvisionedBy, volume.Provisioner), pvReclaim(corev1.PersistentVolumeReclaimDelete))},
			volumes: []volumeWant{{name: "pvc-c", phase: corev1.VolumeBound, claim: "c", uid: "uid-c"}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "pvc-c", annots: bound, capacity: "1Gi"}},
		},
		{
			name:   "Immediate class: handed to the provisioner at once",
			objs:   []runtime.Object{class("fast", volume.Provisioner, storagev1.VolumeBindingImmediate), pvc("c", "1Gi", pvcClass(new("fast")))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, annots: []string{volume.AnnStorageProvisioner, volume.AnnBetaStorageProvisioner}}},
			events: []string{externalWaiting},
		},
		{
			name:   "missing class",
			objs:   []runtime.Object{pvc("c", "1Gi", pvcClass(new("nope")))},
			err:    `storageclass.storage.k8s.io "nope" not found`,
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events: []string{`Warning ProvisioningFailed storageclass.storage.k8s.io "nope" not found`},
		},
		{
			name:   "in-tree provisioner",
			objs:   []runtime.Object{class("manual", "kubernetes.io/no-provisioner", storagev1.VolumeBindingImmediate), pvc("c", "1Gi", pvcClass(new("manual")))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events: []string{"Warning ProvisioningFailed no volume plugin matched name: kubernetes.io/no-provisioner"},
		},
		{
			name:   "retroactive default class",
			objs:   []runtime.Object{localClass(), pvc("c", "1Gi", pvcClass(nil))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset, className: new("local")}},
		},
		{
			name:   "no default class: no class given",
			objs:   []runtime.Object{class("fast", volume.Provisioner, storagev1.VolumeBindingImmediate), pvc("c", "1Gi", pvcClass(nil))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimPending, noAnnots: unset}},
			events: []string{"Normal FailedBinding no persistent volumes available for this claim and no storage class is set"},
		},
		{
			name:   "bound claim: its volume is gone",
			objs:   []runtime.Object{pvc("c", "1Gi", pvcBound("gone", "1Gi"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimLost, volume: "gone", annots: bound}},
			events: []string{"Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!"},
		},
		{
			name:   "bound claim: its volumeName is gone",
			objs:   []runtime.Object{pvc("c", "1Gi", pvcBound("", "1Gi"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimLost, annots: bound}},
			events: []string{"Warning ClaimLost Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"},
		},
		{
			name:    "bound claim: its volume is bound to another claim",
			objs:    []runtime.Object{pv("v", "1Gi", pvRef("other", "uid-other"), pvPhase(corev1.VolumeBound)), pvc("c", "1Gi", pvcBound("v", "1Gi"))},
			volumes: []volumeWant{{name: "v", phase: corev1.VolumeBound, claim: "other", uid: "uid-other"}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimLost, volume: "v", annots: bound}},
			events:  []string{"Warning ClaimMisbound Two claims are bound to the same volume, this one is bound incorrectly"},
		},
		{
			name:    "bound claim: its volume lost its claimRef",
			objs:    []runtime.Object{pv("v", "1Gi"), pvc("c", "1Gi", pvcBound("v", "1Gi"))},
			volumes: []volumeWant{{name: "v", phase: corev1.VolumeBound, claim: "c", uid: "uid-c", byCtrl: true}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "v", annots: bound, capacity: "1Gi"}},
		},
		{
			name: "bound claim keeps its capacity",
			objs: []runtime.Object{pv("v", "2Gi", pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound), pvClass("manual")),
				class("manual", "x.io/p", storagev1.VolumeBindingImmediate), pvc("c", "1Gi", pvcClass(new("manual")), pvcBound("v", "1Gi"))},
			volumes: []volumeWant{{name: "v", phase: corev1.VolumeBound, claim: "c", uid: "uid-c"}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "v", annots: bound, noAnnots: []string{AnnStorageResizer}, capacity: "1Gi"}},
		},
		{
			name: "expansion handed to the resizer",
			objs: []runtime.Object{localClass(), pv("v", "1Gi", pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound), pvClass("local"), pvAnn(volume.AnnProvisionedBy, volume.Provisioner)),
				pvc("c", "2Gi", pvcClass(new("local")), pvcBound("v", "1Gi"))},
			volumes: []volumeWant{{name: "v", phase: corev1.VolumeBound, claim: "c", uid: "uid-c"}},
			claims:  []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "v", annots: append([]string{AnnStorageResizer}, bound...), capacity: "1Gi"}},
			events:  []string{"Normal ExternalExpanding waiting for an external controller to expand this PVC"},
		},
		{
			name: "expansion not allowed by the class",
			objs: []runtime.Object{class("fixed", volume.Provisioner, storagev1.VolumeBindingImmediate), pv("v", "1Gi", pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound), pvClass("fixed")),
				pvc("c", "2Gi", pvcClass(new("fixed")), pvcBound("v", "1Gi"))},
			claims: []claimWant{{name: "c", phase: corev1.ClaimBound, volume: "v", annots: bound, noAnnots: []string{AnnStorageResizer}, capacity: "1Gi"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.objs...)
			err := w.c.syncClaimKey(context.Background(), ns+"/c")
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("sync: error %v, want %q", err, tc.err)
			}
			for _, v := range tc.volumes {
				w.checkVolume(v)
			}
			for _, c := range tc.claims {
				w.checkClaim(c)
			}
			if got := w.events(); !slices.Equal(got, tc.events) {
				t.Errorf("events\n%q\nwant\n%q", got, tc.events)
			}
		})
	}
}

func TestSyncVolume(t *testing.T) {
	provisioned := []func(*corev1.PersistentVolume){pvAnn(volume.AnnProvisionedBy, volume.Provisioner), pvReclaim(corev1.PersistentVolumeReclaimDelete)}
	for _, tc := range []struct {
		name        string
		objs        []runtime.Object
		want        volumeWant
		events      []string
		claimQueued bool
	}{
		{name: "new volume: Available", objs: []runtime.Object{pv("v", "1Gi", pvPhase(corev1.VolumePending))},
			want: volumeWant{name: "v", phase: corev1.VolumeAvailable}},
		{name: "pre-bound to a claim not bound yet: Available", objs: []runtime.Object{pv("v", "1Gi", pvRef("c", ""), pvPhase(corev1.VolumePending))},
			want: volumeWant{name: "v", phase: corev1.VolumeAvailable, claim: "c"}},
		{name: "bound to its claim: Bound", objs: []runtime.Object{pv("v", "1Gi", pvRef("c", "uid-c")), pvc("c", "1Gi", pvcBound("v", "1Gi"))},
			want: volumeWant{name: "v", phase: corev1.VolumeBound, claim: "c", uid: "uid-c"}},
		{name: "claim gone, Retain: Released", objs: []runtime.Object{pv("v", "1Gi", pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound))},
			want: volumeWant{name: "v", phase: corev1.VolumeReleased, claim: "c", uid: "uid-c"}},
		{name: "claim created again, Retain: Released",
			objs: []runtime.Object{pv("v", "1Gi", pvRef("c", "uid-old"), pvPhase(corev1.VolumeBound)), pvc("c", "1Gi")},
			want: volumeWant{name: "v", phase: corev1.VolumeReleased, claim: "c", uid: "uid-old"}},
		{name: "claim gone, Delete, external provisioner: Released, left to it",
			objs: []runtime.Object{pv("v", "1Gi", append(provisioned, pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound))...)},
			want: volumeWant{name: "v", phase: corev1.VolumeReleased, claim: "c", uid: "uid-c"}},
		{name: "claim gone, Delete, not provisioned: Failed",
			objs:   []runtime.Object{pv("v", "1Gi", pvReclaim(corev1.PersistentVolumeReclaimDelete), pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound))},
			want:   volumeWant{name: "v", phase: corev1.VolumeFailed, claim: "c", uid: "uid-c", message: `error getting deleter volume plugin for volume "v": no deletable volume plugin matched`},
			events: []string{`Warning VolumeFailedDelete error getting deleter volume plugin for volume "v": no deletable volume plugin matched`}},
		{name: "claim gone, Recycle: Failed",
			objs:   []runtime.Object{pv("v", "1Gi", pvReclaim(corev1.PersistentVolumeReclaimRecycle), pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound))},
			want:   volumeWant{name: "v", phase: corev1.VolumeFailed, claim: "c", uid: "uid-c", message: "No recycler plugin found for the volume!"},
			events: []string{"Warning VolumeFailedRecycle No recycler plugin found for the volume!"}},
		{name: "Failed stays Failed",
			objs: []runtime.Object{pv("v", "1Gi", pvReclaim(corev1.PersistentVolumeReclaimRecycle), pvRef("c", "uid-c"), pvPhase(corev1.VolumeFailed),
				func(v *corev1.PersistentVolume) { v.Status.Message = "No recycler plugin found for the volume!" })},
			want: volumeWant{name: "v", phase: corev1.VolumeFailed, claim: "c", uid: "uid-c", message: "No recycler plugin found for the volume!"}},
		{name: "claim bound elsewhere, bound by the controller: unbound",
			objs: []runtime.Object{pv("v", "1Gi", pvRef("c", "uid-c"), pvAnn(volume.AnnBoundByController, "yes"), pvPhase(corev1.VolumeBound)),
				pvc("c", "1Gi", pvcBound("w", "1Gi"))},
			want: volumeWant{name: "v", phase: corev1.VolumeAvailable}},
		{name: "claim bound elsewhere, pre-bound by the user: uid forgotten",
			objs: []runtime.Object{pv("v", "1Gi", pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound)), pvc("c", "1Gi", pvcBound("w", "1Gi"))},
			want: volumeWant{name: "v", phase: corev1.VolumeAvailable, claim: "c"}},
		{name: "claim bound elsewhere, provisioned for it: Released, left to the provisioner",
			objs: []runtime.Object{pv("v", "1Gi", append(provisioned, pvRef("c", "uid-c"), pvPhase(corev1.VolumeBound))...), pvc("c", "1Gi", pvcBound("w", "1Gi"))},
			want: volumeWant{name: "v", phase: corev1.VolumeReleased, claim: "c", uid: "uid-c"}},
		{name: "claim not bound yet: its sync binds",
			objs:        []runtime.Object{pv("v", "1Gi", append(provisioned, pvRef("c", "uid-c"), pvPhase(corev1.VolumePending))...), pvc("c", "1Gi")},
			want:        volumeWant{name: "v", phase: corev1.VolumePending, claim: "c", uid: "uid-c"},
			claimQueued: true},
		{name: "claim of another volume mode",
			objs: []runtime.Object{pv("v", "1Gi", pvBlock, pvRef("c", "uid-c")), pvc("c", "1Gi")},
			want: volumeWant{name: "v", phase: corev1.VolumeAvailable, claim: "c", uid: "uid-c"},
			events: []string{`Warning VolumeMismatch Cannot bind PersistentVolume to requested PersistentVolumeClaim "c" due to incompatible volumeMode.`,
				`Warning VolumeMismatch Cannot bind PersistentVolume "v" to requested PersistentVolumeClaim due to incompatible volumeMode.`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.objs...)
			// The informers' handlers do not run: the queue holds what
			// the sync adds.
			if err := w.c.syncVolumeKey(context.Background(), tc.want.name); err != nil {
				t.Fatal(err)
			}
			w.checkVolume(tc.want)
			if got := w.events(); !slices.Equal(got, tc.events) {
				t.Errorf("events\n%q\nwant\n%q", got, tc.events)
			}
			if got := w.c.claimQueue.Len() == 1; got != tc.claimQueued {
				t.Errorf("claim queued %v, want %v", got, tc.claimQueued)
			}
		})
	}
}

// TestPhaseTransitionTime: a change of phase is dated, a message alone is
// not a transition.
func TestPhaseTransitionTime(t *testing.T) {
	w := newWorld(t, pv("v", "1Gi", pvPhase(corev1.VolumePending)))
	if err := w.c.syncVolumeKey(context.Background(), "v"); err != nil {
		t.Fatal(err)
	}
	got := w.pv("v").Status.LastPhaseTransitionTime
	if got == nil || !got.Time.Equal(t0) {
		t.Errorf("lastPhaseTransitionTime %v, want %v", got, t0)
	}
}

func TestDefaultClass(t *testing.T) {
	def := func(name string, created time.Time, ann string) *storagev1.StorageClass {
		sc := class(name, "x.io/p", storagev1.VolumeBindingImmediate)
		sc.CreationTimestamp = metav1.NewTime(created)
		if ann != "" {
			sc.Annotations = map[string]string{ann: "true"}
		}
		return sc
	}
	beta := "storageclass.beta.kubernetes.io/is-default-class"
	for _, tc := range []struct {
		name    string
		classes []*storagev1.StorageClass
		want    string
	}{
		{name: "none", classes: []*storagev1.StorageClass{def("a", t0, "")}},
		{name: "one", classes: []*storagev1.StorageClass{def("a", t0, ""), def("b", t0, volume.AnnDefaultClass)}, want: "b"},
		{name: "beta annotation", classes: []*storagev1.StorageClass{def("a", t0, beta)}, want: "a"},
		{name: "newest", classes: []*storagev1.StorageClass{def("z", t0.Add(time.Hour), volume.AnnDefaultClass), def("a", t0, volume.AnnDefaultClass)}, want: "z"},
		{name: "same age: by name", classes: []*storagev1.StorageClass{def("z", t0, volume.AnnDefaultClass), def("m", t0, volume.AnnDefaultClass)}, want: "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if sc := DefaultClass(tc.classes); sc != nil {
				got = sc.Name
			}
			if got != tc.want {
				t.Errorf("default %q, want %q", got, tc.want)
			}
		})
	}
}

func drain(q interface {
	Len() int
	Get() (string, bool)
	Done(string)
}) []string {
	var out []string
	for q.Len() > 0 {
		k, _ := q.Get()
		out = append(out, k)
		q.Done(k)
	}
	slices.Sort(out)
	return out
}

// TestHandlers: what the informers' events queue.
func TestHandlers(t *testing.T) {
	w := newWorld(t, pvc("pending", "1Gi"), pvc("bound", "1Gi", pvcBound("v", "1Gi")), pvc("noclass", "1Gi", pvcClass(nil)))
	c := w.c

	// A deleted claim releases its volume.
	c.claimDeleted(pvc("bound", "1Gi", pvcBound("v", "1Gi")))
	c.claimDeleted(pvc("pending", "1Gi"))
	if got, want := drain(c.volumeQueue), []string{"v"}; !slices.Equal(got, want) {
		t.Errorf("claim deleted: volumes queued %v, want %v", got, want)
	}
	// A bound volume queues its claim; an unbound one the pending claims.
	c.volumeChanged(pv("x", "1Gi", pvRef("bound", "uid-bound")))
	if got, want := drain(c.claimQueue), []string{ns + "/bound"}; !slices.Equal(got, want) {
		t.Errorf("bound volume changed: claims queued %v, want %v", got, want)
	}
	c.volumeChanged(pv("y", "1Gi"))
	if got, want := drain(c.claimQueue), []string{ns + "/noclass", ns + "/pending"}; !slices.Equal(got, want) {
		t.Errorf("unbound volume changed: claims queued %v, want %v", got, want)
	}
	if got, want := drain(c.volumeQueue), []string{"x", "y"}; !slices.Equal(got, want) {
		t.Errorf("volumes queued %v, want %v", got, want)
	}
	// A class, maybe a new default, queues the claims without one.
	c.classChanged()
	if got, want := drain(c.claimQueue), []string{ns + "/noclass"}; !slices.Equal(got, want) {
		t.Errorf("class changed: claims queued %v, want %v", got, want)
	}
	// Resync queues everything.
	c.resync()
	if got, want := drain(c.claimQueue), []string{ns + "/bound", ns + "/noclass", ns + "/pending"}; !slices.Equal(got, want) {
		t.Errorf("resync: claims queued %v, want %v", got, want)
	}
}

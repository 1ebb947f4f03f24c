package volumes

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "pod-uid"}}
	claimVol := func(name string, readOnly bool) *corev1.Volume {
		return &corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name, ReadOnly: readOnly}}}
	}
	ephemeralVol := &corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}
	claim := func(name, volume string, mutate ...func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
		c := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-claim-" + name)},
			Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: volume},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		}
		for _, m := range mutate {
			m(c)
		}
		return c
	}
	pv := func(name, claimName string, src corev1.PersistentVolumeSource) *corev1.PersistentVolume {
		v := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: src}}
		if claimName != "" {
			v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: claimName, UID: types.UID("uid-claim-" + claimName)}
		}
		return v
	}
	local := corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}}
	ctrl := true
	objects := []runtime.Object{
		claim("bound", "pv-local"), pv("pv-local", "bound", local),
		claim("hostpath", "pv-host"), pv("pv-host", "hostpath", corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}),
		claim("pending", "", func(c *corev1.PersistentVolumeClaim) { c.Status.Phase = corev1.ClaimPending }),
		claim("deleting", "pv-x", func(c *corev1.PersistentVolumeClaim) { c.DeletionTimestamp = &metav1.Time{} }),
		claim("nfs", "pv-nfs"), pv("pv-nfs", "nfs", corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/"}}),
		claim("other", "pv-other"), pv("pv-other", "someone-else", local),
		claim("unclaimed", "pv-unclaimed"), pv("pv-unclaimed", "", local),
		claim("nodir", "pv-nodir"), pv("pv-nodir", "nodir", corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: filepath.Join(dir, "none")}}),
		claim("nopv", "pv-missing"),
		claim("web-scratch", "pv-eph", func(c *corev1.PersistentVolumeClaim) {
			c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web", UID: "pod-uid", Controller: &ctrl}}
		}), pv("pv-eph", "web-scratch", local),
	}
	affine := func(host string) *corev1.VolumeNodeAffinity {
		return &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{host}}},
		}}}}
	}
	here, there := pv("pv-here", "here", local), pv("pv-there", "there", local)
	here.Spec.NodeAffinity, there.Spec.NodeAffinity = affine("n1"), affine("n2")
	objects = append(objects, claim("here", "pv-here"), here, claim("there", "pv-there"), there,
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}})
	client := fake.NewClientset(objects...)
	for _, tc := range []struct {
		name      string
		vol       *corev1.Volume
		objects   []runtime.Object // replace the defaults
		wantPath  string
		readOnly  bool
		ownership bool
		err       string
	}{
		{name: "local", vol: claimVol("bound", false), wantPath: dir, ownership: true},
		{name: "read-only", vol: claimVol("bound", true), wantPath: dir, readOnly: true, ownership: true},
		{name: "hostPath: no fsGroup", vol: claimVol("hostpath", false), wantPath: dir},
		{name: "missing claim", vol: claimVol("nope", false), err: `error processing PVC ns/nope: failed to fetch PVC from API server: persistentvolumeclaims "nope" not found`},
		{name: "unbound", vol: claimVol("pending", false), err: "error processing PVC ns/pending: PVC is not bound"},
		{name: "being deleted", vol: claimVol("deleting", false), err: "PVC is being deleted"},
		{name: "unsupported", vol: claimVol("nfs", false), err: "volume type not supported by Havre"},
		{name: "another claim's volume", vol: claimVol("other", false), err: "does not point to claim.UID"},
		{name: "volume not bound", vol: claimVol("unclaimed", false), err: "nil pv.Spec.ClaimRef"},
		{name: "missing directory", vol: claimVol("nodir", false), err: "does not exist"},
		{name: "missing volume", vol: claimVol("nopv", false), err: "failed to fetch PV pv-missing from API server"},
		{name: "ephemeral", vol: ephemeralVol, wantPath: dir, ownership: true},
		{name: "this node's", vol: claimVol("here", false), wantPath: dir, ownership: true},
		{name: "another node's", vol: claimVol("there", false), err: `MountVolume.NodeAffinity check failed for volume "pv-there"`},
		{name: "ephemeral not the pod's", vol: ephemeralVol, objects: []runtime.Object{claim("web-scratch", "pv-eph"), pv("pv-eph", "web-scratch", local)},
			err: "PVC ns/web-scratch was not created for pod ns/web (pod is not owner)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client
			if tc.objects != nil {
				c = fake.NewClientset(tc.objects...)
			}
			got, err := Resolve(context.Background(), ClientGetter{Client: c, NodeName: "n1"}, pod, tc.vol)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Path != tc.wantPath || got.ReadOnly != tc.readOnly || got.Ownership != tc.ownership || got.Volume != tc.vol.Name {
				t.Errorf("got %+v", got)
			}
		})
	}
	if _, _, _, ok := ClaimOf(pod, &corev1.Volume{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}); ok {
		t.Error("an emptyDir is a claim")
	}
}

package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// TestClaimVolumes mounts a claim into a pod on a real containerd: the pod
// waits, ContainerCreating with a FailedMount event, while its claim is
// unbound; once the claim and a local PersistentVolume on a directory of
// this host are bound to each other (written by hand: the PersistentVolume
// controller is not what is tested), the pod runs as a non-root user,
// writes through a subPath and a subPathExpr, and what it wrote is in the
// directory, owned by the pod's fsGroup. The data outlives the pod. The
// server runs without the controllers that would bind the claims or make
// the ephemeral ones (test/e2e/storage tests them with the agent).
func TestClaimVolumes(t *testing.T) {
	s := startNode(t, framework.WithArgs("--controllers", "*,-persistentvolume-binder-controller,-ephemeral-volume-controller"))
	ns := "claims"
	createNamespace(t, s, ns)
	dir := t.TempDir()
	client := s.Clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	claim, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
			StorageClassName: new(""),
			VolumeName:       "claims-e2e",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := webContainer("web", "-append=/data/out.txt=hello")
	c.Env = []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "data", MountPath: "/data", SubPath: "app"},
		{Name: "data", MountPath: "/named", SubPathExpr: "pods/$(POD_NAME)"},
	}
	createPod(t, s, ns, "writer", func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: new(int64(1000)), RunAsGroup: new(int64(1000)), FSGroup: new(int64(2000))}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	}, c)
	waitEvent(t, s, ns, "writer", "FailedMount", 60*time.Second)
	waitEvent(t, s, ns, "writer", "error processing PVC claims/data: PVC is not bound", 5*time.Second)
	if p, err := getPod(t, s, ns, "writer"); err != nil || len(p.Status.ContainerStatuses) != 1 ||
		p.Status.ContainerStatuses[0].State.Waiting == nil || p.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Fatalf("pod waiting for its claim: %s, %v", statusSummary(p), err)
	}

	// Bind the pair.
	bindLocalVolume(t, s, claim, "claims-e2e", dir)

	p := waitPod(t, s, ns, "writer", 60*time.Second, "Running and Ready once the claim is bound", running)
	out := filepath.Join(dir, "app", "out.txt")
	framework.Eventually(t, 10*time.Second, func() (bool, error) {
		data, _ := os.ReadFile(out)
		return string(data) == "hello\n", nil
	}, "the pod's write through subPath app in %s", out)
	for _, f := range []string{dir, filepath.Join(dir, "app"), out} {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		if st.Gid != 2000 {
			t.Errorf("%s: group %d, want the fsGroup 2000", f, st.Gid)
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR && (st.Mode&syscall.S_ISGID == 0 || st.Mode&0o070 != 0o070) {
			t.Errorf("%s: mode %o, want setgid and group rwx", f, st.Mode&0o7777)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "pods", "writer")); err != nil || !fi.IsDir() {
		t.Errorf("subPathExpr pods/$(POD_NAME) not made in the volume: %v", err)
	}
	// The container sees the subPath, not the whole volume.
	if got := podGet(t, p, 8080, "/file?path=/data/out.txt"); got != "hello\n" {
		t.Errorf("/data/out.txt in the pod: %q", got)
	}

	// Deleting the pod unmounts its subPaths and keeps the data.
	if !hostMountsContain(string(p.UID)) {
		t.Error("no subPath bind mount of the pod's on the host")
	}
	if err := client.CoreV1().Pods(ns).Delete(ctx, "writer", metav1.DeleteOptions{GracePeriodSeconds: new(int64(1))}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		return !hostMountsContain(string(p.UID)), nil
	}, "the pod's subPath mounts gone after its deletion")
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := getPod(t, s, ns, "writer")
		return isNotFound(err), nil
	}, "pod deleted")
	if data, err := os.ReadFile(out); err != nil || string(data) != "hello\n" {
		t.Errorf("data after the pod's deletion: %q, %v", data, err)
	}

	testEphemeralVolume(t, s, ns)
}

// bindLocalVolume creates a local PersistentVolume on dir bound to claim
// and marks both Bound, as the PersistentVolume controller would.
func bindLocalVolume(t *testing.T, s *framework.Server, claim *corev1.PersistentVolumeClaim, name, dir string) {
	t.Helper()
	client := s.Clientset()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	pv, err := client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
			}}}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		_ = client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{})
	})
	pv.Status.Phase = corev1.VolumeBound
	if _, err := client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := client.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Status.Phase = corev1.ClaimBound
	c.Status.AccessModes = pv.Spec.AccessModes
	c.Status.Capacity = pv.Spec.Capacity
	if _, err := client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// testEphemeralVolume runs a pod with a generic ephemeral volume: it waits
// for its claim `<pod>-<volume>` (made here, as the ephemeral volume
// controller would), refuses one the pod does not own, and runs once the
// claim is the pod's and bound.
func testEphemeralVolume(t *testing.T, s *framework.Server, ns string) {
	client := s.Clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c := webContainer("web", "-append=/scratch/eph.txt=ephemeral")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	createPod(t, s, ns, "eph", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
			VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
			}},
		}}}}
	}, c)
	waitEvent(t, s, ns, "eph", `error processing PVC claims/eph-scratch: failed to fetch PVC from API server: persistentvolumeclaims "eph-scratch" not found`, 60*time.Second)
	pod, err := getPod(t, s, ns, "eph")
	if err != nil {
		t.Fatal(err)
	}
	claim, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "eph-scratch"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
			StorageClassName: new(""),
			VolumeName:       "claims-e2e-eph",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindLocalVolume(t, s, claim, "claims-e2e-eph", dir)
	waitEvent(t, s, ns, "eph", "PVC claims/eph-scratch was not created for pod claims/eph (pod is not owner)", 30*time.Second)
	if p, err := getPod(t, s, ns, "eph"); err != nil || running(p) {
		t.Fatalf("pod runs on a claim it does not own: %s, %v", statusSummary(p), err)
	}
	claim, err = client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "eph-scratch", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "eph", UID: pod.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}
	if _, err := client.CoreV1().PersistentVolumeClaims(ns).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, s, ns, "eph", 60*time.Second, "Running and Ready once its claim is its own", running)
	framework.Eventually(t, 10*time.Second, func() (bool, error) {
		data, _ := os.ReadFile(filepath.Join(dir, "eph.txt"))
		return string(data) == "ephemeral\n", nil
	}, "the pod's write in its ephemeral volume")
}

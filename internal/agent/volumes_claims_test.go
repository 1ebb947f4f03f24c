package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod whose claim is not bound waits, ContainerCreating, with a
// FailedMount event and back-off, and starts once the claim is bound, its
// volume's directory mounted through a subPath and given to the fsGroup.
func TestSyncWaitsForClaims(t *testing.T) {
	ctx := context.Background()
	volDir := t.TempDir()
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.NodeName = "n1"
	policy := corev1.FSGroupChangeOnRootMismatch
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: new(int64(3000)), FSGroupChangePolicy: &policy}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-claim"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "app"}}
	h := newHarness(t, pod)
	claims := h.cs.CoreV1().PersistentVolumeClaims("ns")
	claim, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-claim", Namespace: "ns", UID: "claim-uid"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	requeue, _ := h.sync()
	h.expectCalls()
	if cs := ctrStatus(h.pod(), "web"); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonContainerCreating {
		t.Fatalf("container waiting for its volume: %+v", cs.State)
	}
	want := "Warning FailedMount Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process volumes=[data]: error processing PVC ns/data-claim: PVC is not bound"
	if ev := h.events(); ev != want {
		t.Errorf("events:\n%s\nwant:\n%s", ev, want)
	}
	if requeue != mountRetryFirst {
		t.Errorf("first retry after %v, want %v", requeue, mountRetryFirst)
	}
	// Still unbound: back-off, and no new event for the same reason
	// until failedMountEvery has passed.
	if requeue, _ = h.sync(); requeue != 2*mountRetryFirst {
		t.Errorf("second retry after %v, want %v", requeue, 2*mountRetryFirst)
	}
	if ev := h.events(); ev != "" {
		t.Errorf("repeated event: %s", ev)
	}
	h.clock = h.clock.Add(failedMountEvery)
	h.sync()
	if ev := h.events(); ev != want {
		t.Errorf("event after %v: %q", failedMountEvery, ev)
	}
	for range 10 {
		requeue, _ = h.sync()
	}
	if requeue != mountRetryMax {
		t.Errorf("retry after %v, want at most %v", requeue, mountRetryMax)
	}
	h.expectCalls()

	// Bound, as the PersistentVolume controller would.
	_, err = h.cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: volDir}},
			ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "data-claim", UID: "claim-uid"},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.Spec.VolumeName = "pv-1"
	claim.Status.Phase = corev1.ClaimBound
	if _, err := claims.Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sync()
	h.expectCalls("RunPodSandbox p attempt=0", "CreateContainer web attempt=0", "StartContainer web")
	var mounts []string
	for _, c := range h.rt.containers {
		for _, m := range c.config.Mounts {
			mounts = append(mounts, m.HostPath+"->"+m.ContainerPath)
		}
	}
	if wantMount := filepath.Join(volDir, "app") + "->/data"; len(mounts) != 1 || mounts[0] != wantMount {
		t.Errorf("mounts %v, want [%s]", mounts, wantMount)
	}
	if os.Geteuid() == 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(volDir, &st); err != nil || st.Gid != 3000 || st.Mode&syscall.S_ISGID == 0 {
			t.Errorf("volume not given to the fsGroup: gid %d mode %o %v", st.Gid, st.Mode, err)
		}
	}
	if ev := h.events(); strings.Contains(ev, "FailedMount") {
		t.Errorf("events once bound:\n%s", ev)
	}

	// Volume stats: the claim, the volume's capacity (1Mi, less than
	// the filesystem holding the directory).
	if err := os.WriteFile(filepath.Join(volDir, "app", "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	h.a.collectVolumeStats(ctx)
	vs := h.a.stats.volumes[pod.UID]
	if len(vs) != 1 || vs[0].Name != "data" || vs[0].PVCRef != (PVCReference{Name: "data-claim", Namespace: "ns"}) ||
		vs[0].CapacityBytes != 1<<20 || vs[0].UsedBytes < 8192 || vs[0].AvailableBytes > 1<<20-vs[0].UsedBytes || vs[0].InodesUsed != 3 || !vs[0].Time.Equal(h.clock) {
		t.Errorf("volume stats %+v", vs)
	}
	// A backing's figures win.
	h.a.volumeUsage = func(_ context.Context, pv string) (int64, int64, bool) { return 100, 4096, pv == "pv-1" }
	h.a.collectVolumeStats(ctx)
	if vs := h.a.stats.volumes[pod.UID]; len(vs) != 1 || vs[0].UsedBytes != 100 || vs[0].CapacityBytes != 4096 || vs[0].AvailableBytes != 3996 {
		t.Errorf("volume stats from the backing %+v", vs)
	}
	// A new agent adopts the running pod: its claim is mounted again for
	// the next container start, without walking the volume under the
	// running container.
	for _, p := range []string{volDir, filepath.Join(volDir, "app", "f")} {
		if err := os.Chown(p, 0, 0); err != nil { // the root mismatches: a setup would walk
			t.Fatal(err)
		}
	}
	h.newAgent(h.pod())
	h.sync()
	h.expectCalls()
	if h.w.claims["data"] == nil || h.w.claims["data"].Path != volDir {
		t.Errorf("claims of the adopted pod: %v", h.w.claims)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(volDir, "app", "f"), &st); err != nil || st.Gid != 0 {
		t.Errorf("adopting the pod changed its volume's files: gid %d, %v", st.Gid, err)
	}
	h.a.forgetClaims(pod.UID)
	h.a.collectVolumeStats(ctx)
	if len(h.a.stats.volumes) != 0 {
		t.Errorf("stats of a forgotten pod: %+v", h.a.stats.volumes)
	}
}

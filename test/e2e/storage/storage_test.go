package storage_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/volume"
	"github.com/havre/havre/test/framework"
)

// TestLocalVolumes: claims of the built-in local class on one node whose
// volumes directory is on btrfs (subvolumes with quota groups: sizes
// enforced, online expansion, instant snapshots).
func TestLocalVolumes(t *testing.T) {
	framework.RequireNodeAgent(t)
	web := framework.BuildImage(t, "test/images/web", webImage)
	pg := framework.PostgresImage(t, postgresImage)
	s := startNodeWith(t, []string{"--volumes-dir", btrfsDir(t, 4<<30)}, web, pg)
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "vol")

	t.Run("the default class", func(t *testing.T) {
		out := s.MustKubectl(t, "get", "storageclass")
		if !strings.Contains(out, "local (default)") || !strings.Contains(out, volume.Provisioner) || !strings.Contains(out, "WaitForFirstConsumer") {
			t.Errorf("kubectl get storageclass:\n%s", out)
		}
	})

	t.Run("a claim waits for its first consumer", func(t *testing.T) {
		apply(t, s, ns, claim("waits", "", "16Mi", ""))
		waitEvent(t, cs, ns, "PersistentVolumeClaim", "waits", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
		c := waitClaim(t, cs, ns, "waits", "pending with the default class", func(c *corev1.PersistentVolumeClaim) bool {
			return c.Spec.StorageClassName != nil && *c.Spec.StorageClassName == volume.DefaultClass
		})
		if c.Status.Phase != corev1.ClaimPending {
			t.Errorf("claim phase %s, want Pending", c.Status.Phase)
		}
	})

	t.Run("a StatefulSet's claims are bound and keep data across pod deletion", func(t *testing.T) {
		apply(t, s, ns, `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: `+webImage+`
        imagePullPolicy: Never
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 32Mi}}
`)
		for i := range 2 {
			pod := fmt.Sprintf("web-%d", i)
			waitPod(t, s, ns, pod)
			pv := volumeOf(t, cs, ns, "data-"+pod)
			if pv.Spec.Local == nil || pv.Spec.NodeAffinity == nil || pv.Annotations[volume.AnnProvisionedBy] != volume.Provisioner {
				t.Errorf("volume of %s: local %v, node affinity %v, annotations %v", pod, pv.Spec.Local, pv.Spec.NodeAffinity, pv.Annotations)
			}
			podExec(t, s, ns, pod, "write", "/data/who", pod)
		}
		deletePod(t, cs, ns, "web-0")
		waitPod(t, s, ns, "web-0")
		if got := podExec(t, s, ns, "web-0", "cat", "/data/who"); got != "web-0" {
			t.Errorf("after the pod's deletion /data/who = %q, want web-0", got)
		}
	})

	t.Run("PostgreSQL keeps its rows on a claim", func(t *testing.T) {
		apply(t, s, ns, claim("pgdata", "", "256Mi", ""))
		apply(t, s, ns, postgresPod("db", "    persistentVolumeClaim: {claimName: pgdata}\n"))
		waitPod(t, s, ns, "db")
		psql(t, s, ns, "db", "create table notes (id int primary key, body text)")
		psql(t, s, ns, "db", "insert into notes select g, 'row ' || g from generate_series(1, 1000) g")
		deletePod(t, cs, ns, "db")
		apply(t, s, ns, postgresPod("db", "    persistentVolumeClaim: {claimName: pgdata}\n"))
		waitPod(t, s, ns, "db")
		if got := psql(t, s, ns, "db", "select count(*) || ' ' || max(body) from notes"); got != "1000 row 999" {
			t.Errorf("after the pod's deletion: %q, want 1000 rows", got)
		}
	})

	t.Run("a claim that fits no node is not scheduled", func(t *testing.T) {
		apply(t, s, ns, claim("huge", "", "100Ti", ""))
		apply(t, s, ns, claimPod("huge", "huge", ""))
		waitEvent(t, cs, ns, "Pod", "huge", "FailedScheduling", "did not have enough free storage")
	})

	t.Run("sizes are enforced and expansion grows the mounted volume", func(t *testing.T) {
		apply(t, s, ns, claim("grow", "", "32Mi", ""))
		apply(t, s, ns, claimPod("grow", "grow", ""))
		waitPod(t, s, ns, "grow")
		if out, _, err := s.Kubectl("-n", ns, "exec", "grow", "--", "fill", "/data/big", "64"); err == nil {
			t.Errorf("writing 64 MiB to a 32 MiB volume succeeded: %s", out)
		}
		s.MustKubectl(t, "-n", ns, "patch", "pvc", "grow", "-p", `{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}`)
		want := resource.MustParse("128Mi")
		waitClaim(t, cs, ns, "grow", "capacity 128Mi", func(c *corev1.PersistentVolumeClaim) bool {
			got := c.Status.Capacity[corev1.ResourceStorage]
			return got.Cmp(want) >= 0
		})
		if pv := volumeOf(t, cs, ns, "grow"); pv.Annotations[volume.AnnBacking] != "btrfs" {
			t.Errorf("volume backing %q, want btrfs", pv.Annotations[volume.AnnBacking])
		}
		// 32 MiB of the failed write are still there.
		podExec(t, s, ns, "grow", "fill", "/data/more", "64")
	})

	snapshots := s.Dynamic().Resource(schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}).Namespace(ns)
	t.Run("a snapshot restores into a new claim with the same bytes, and a clone likewise", func(t *testing.T) {
		apply(t, s, ns, claim("src", "", "32Mi", ""))
		apply(t, s, ns, claimPod("src", "src", ""))
		waitPod(t, s, ns, "src")
		podExec(t, s, ns, "src", "write", "/data/v", "one")
		snap := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
			"metadata": map[string]any{"name": "snap"},
			"spec":     map[string]any{"source": map[string]any{"persistentVolumeClaimName": "src"}},
		}}
		if _, err := snapshots.Create(ctx(t), snap, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			got, err := snapshots.Get(ctx(t), "snap", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ready, _, _ := unstructured.NestedBool(got.Object, "status", "readyToUse")
			return ready, nil
		}, "snapshot ready to use")
		podExec(t, s, ns, "src", "write", "/data/v", "two")

		apply(t, s, ns, claim("restored", "", "32Mi", "  dataSource: {apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}\n"))
		apply(t, s, ns, claimPod("restored", "restored", ""))
		waitPod(t, s, ns, "restored")
		if got := podExec(t, s, ns, "restored", "cat", "/data/v"); got != "one" {
			t.Errorf("restored claim has %q, want the snapshot's one", got)
		}
		apply(t, s, ns, claim("clone", "", "32Mi", "  dataSource: {kind: PersistentVolumeClaim, name: src}\n"))
		apply(t, s, ns, claimPod("clone", "clone", ""))
		waitPod(t, s, ns, "clone")
		if got := podExec(t, s, ns, "clone", "cat", "/data/v"); got != "two" {
			t.Errorf("clone has %q, want the source's two", got)
		}
	})

	t.Run("fsGroup owns a claim's volume", func(t *testing.T) {
		apply(t, s, ns, claim("owned", "", "16Mi", ""))
		apply(t, s, ns, claimPod("owned", "owned", "  securityContext: {runAsUser: 1000, fsGroup: 2000}\n"))
		waitPod(t, s, ns, "owned")
		f := strings.Fields(podExec(t, s, ns, "owned", "stat", "/data"))
		if len(f) != 3 || f[1] != "2000" || !strings.HasPrefix(f[2], "2") {
			t.Errorf("stat /data = %q, want group 2000 and setgid", f)
		}
		podExec(t, s, ns, "owned", "write", "/data/by-1000", "ok")
	})

	t.Run("reclaim: Delete removes the volume, Retain keeps it", func(t *testing.T) {
		apply(t, s, ns, `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: `+volume.Provisioner+`
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
`)
		for _, c := range []struct{ name, class string }{{"gone", ""}, {"kept", "keep"}} {
			apply(t, s, ns, claim(c.name, c.class, "16Mi", ""))
			apply(t, s, ns, claimPod(c.name, c.name, ""))
			waitPod(t, s, ns, c.name)
		}
		gone, kept := volumeOf(t, cs, ns, "gone"), volumeOf(t, cs, ns, "kept")
		for _, pv := range []*corev1.PersistentVolume{gone, kept} {
			if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
				t.Fatalf("volume %s: %v", pv.Name, err)
			}
		}
		for _, name := range []string{"gone", "kept"} {
			deletePod(t, cs, ns, name)
			if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx(t), name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			_, err := cs.CoreV1().PersistentVolumes().Get(ctx(t), gone.Name, metav1.GetOptions{})
			_, statErr := os.Stat(gone.Spec.Local.Path)
			return err != nil && os.IsNotExist(statErr), nil
		}, "volume %s and its directory deleted", gone.Name)
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			pv, err := cs.CoreV1().PersistentVolumes().Get(ctx(t), kept.Name, metav1.GetOptions{})
			return err == nil && pv.Status.Phase == corev1.VolumeReleased, nil
		}, "volume %s Released", kept.Name)
		if _, err := os.Stat(kept.Spec.Local.Path); err != nil {
			t.Errorf("retained volume's directory: %v", err)
		}
	})

	t.Run("a generic ephemeral volume lives and dies with its pod", func(t *testing.T) {
		apply(t, s, ns, `apiVersion: v1
kind: Pod
metadata: {name: eph}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: `+webImage+`
    imagePullPolicy: Never
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
`)
		waitPod(t, s, ns, "eph")
		podExec(t, s, ns, "eph", "write", "/scratch/x", "y")
		waitClaim(t, cs, ns, "eph-scratch", "bound", bound)
		deletePod(t, cs, ns, "eph")
		framework.Eventually(t, waitTimeout, func() (bool, error) {
			_, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx(t), "eph-scratch", metav1.GetOptions{})
			return err != nil, nil
		}, "the pod's claim deleted with it")
	})
}

package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// What the tests write into a local volume, as upstream's suite does.
const (
	localTestFile    = "test-file"
	localTestContent = "test-file-content"
	// localMount is where claimPod mounts the claim.
	localMount = "/data"
	// otherNode is a node that does not exist: a volume with affinity to
	// it is on a node other than the pod's.
	otherNode = "havre-e2e-elsewhere"
)

// TestLocalVolumeSuite checks what upstream's in-tree suite
// "[sig-storage] PersistentVolumes-local" (test/e2e/storage/persistent_volumes-local.go)
// checks for its "dir" volume type, on statically provisioned local
// PersistentVolumes: a class of provisioner kubernetes.io/no-provisioner
// (WaitForFirstConsumer), volumes whose spec.local.path is a directory the
// test makes on the node (this machine) with node affinity to the node,
// and claims of the class that the scheduler binds to them. Upstream's
// subtests are named as upstream names them; the ones needing two nodes
// are checked against a volume on a node that does not exist.
func TestLocalVolumeSuite(t *testing.T) {
	framework.RequireNodeAgent(t)
	web := framework.BuildImage(t, "test/images/web", webImage)
	s := startNode(t, web)
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "persistent-local-volumes-test")
	node, err := cs.CoreV1().Nodes().Get(ctx(t), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hostname := node.Labels[corev1.LabelHostname]
	if hostname == "" {
		t.Fatalf("node %s has no %s label; its labels: %v", nodeName, corev1.LabelHostname, node.Labels)
	}
	l := &localSuite{s: s, cs: cs, ns: ns, class: "local-volume-test-storageclass-" + ns, hostname: hostname}
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	if _, err := cs.StorageV1().StorageClasses().Create(ctx(t), &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: l.class},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: &wait,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := cleanupContext()
		defer cancel()
		if err := cs.StorageV1().StorageClasses().Delete(c, l.class, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting class %s: %v", l.class, err)
		}
	})

	const dir = "[Volume type: dir] "

	t.Run(dir+"One pod requesting one prebound PVC should be able to mount volume and read from pod1", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		pod1 := l.pod(t, vol, "pod1", "")
		l.write(t, pod1, localTestContent)
		l.read(t, pod1, localTestContent)
		vol.onNode(t, localTestContent)
	})

	t.Run(dir+"One pod requesting one prebound PVC should be able to mount volume and write from pod1", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		pod1 := l.pod(t, vol, "pod1", "")
		l.write(t, pod1, localTestContent)
		l.read(t, pod1, localTestContent)
		// Upstream writes the volume's path on the node.
		l.write(t, pod1, vol.path)
		l.read(t, pod1, vol.path)
		vol.onNode(t, vol.path)
	})

	t.Run(dir+"Two pods mounting a local volume at the same time should be able to write from pod1 and read from pod2", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		pod1 := l.pod(t, vol, "pod1", "")
		l.write(t, pod1, localTestContent)
		l.read(t, pod1, localTestContent)
		pod2 := l.pod(t, vol, "pod2", "")
		l.read(t, pod2, localTestContent)
		l.write(t, pod2, vol.path)
		l.read(t, pod1, vol.path)
	})

	t.Run(dir+"Two pods mounting a local volume one after the other should be able to write from pod1 and read from pod2", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		pod1 := l.pod(t, vol, "pod1", "")
		l.write(t, pod1, localTestContent)
		l.read(t, pod1, localTestContent)
		deletePod(t, cs, ns, pod1)
		pod2 := l.pod(t, vol, "pod2", "")
		l.read(t, pod2, localTestContent)
	})

	t.Run(dir+"Set fsGroup for local volume should set fsGroup for one pod [Slow]", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		l.fsGroupPod(t, vol, "pod1", 1234)
	})

	t.Run(dir+"Set fsGroup for local volume should set same fsGroup for two pods simultaneously [Slow]", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		l.fsGroupPod(t, vol, "pod1", 1234)
		l.fsGroupPod(t, vol, "pod2", 1234)
	})

	t.Run(dir+"Set fsGroup for local volume should set different fsGroup for second pod if first pod is deleted [Flaky]", func(t *testing.T) {
		vol := l.volume(t, "", hostname, false)
		pod1 := l.fsGroupPod(t, vol, "pod1", 1234)
		deletePod(t, cs, ns, pod1)
		l.fsGroupPod(t, vol, "pod2", 4321)
	})

	t.Run("Local volume that cannot be mounted [Slow] should fail due to non-existent path", func(t *testing.T) {
		vol := l.volume(t, filepath.Join(t.TempDir(), "non-existent", "location", "nowhere"), hostname, false)
		pod := vol.name + "-pod"
		apply(t, s, ns, claimPod(pod, vol.claim, ""))
		l.cleanupPod(t, pod)
		msg := waitEvent(t, cs, ns, "Pod", pod, "FailedMount", fmt.Sprintf("path %q does not exist", vol.path))
		t.Logf("FailedMount: %s", msg)
		p, err := cs.CoreV1().Pods(ns).Get(ctx(t), pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodRunning || len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
			t.Errorf("pod on a volume whose path does not exist is running: %+v", p.Status)
		}
	})

	// Upstream's volume is on one node and its pod is sent to another; here
	// the pod is sent to the one node and the volume is on another.
	t.Run("Pod with node different from PV's NodeAffinity should fail scheduling due to different NodeAffinity", func(t *testing.T) {
		// The claim waits for its consumer: no volume of the class reaches
		// the pod's node, and the class provisions none.
		vol := l.volume(t, "", otherNode, false)
		pod := vol.name + "-pod"
		apply(t, s, ns, claimPod(pod, vol.claim, fmt.Sprintf(`  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: %s, operator: In, values: [%s]}]
`, corev1.LabelHostname, hostname)))
		l.cleanupPod(t, pod)
		l.unschedulable(t, pod, "didn't find available persistent volumes to bind")
	})

	t.Run("Pod with node different from PV's NodeAffinity should fail scheduling due to different NodeSelector", func(t *testing.T) {
		// The volume is pre-bound to the claim, so the claim is bound
		// before its pod (as upstream's, of an Immediate class), and the
		// volume's node is not the pod's.
		vol := l.volume(t, "", otherNode, true)
		waitClaim(t, cs, ns, vol.claim, "bound to its pre-bound volume", bound)
		pod := vol.name + "-pod"
		apply(t, s, ns, claimPod(pod, vol.claim, fmt.Sprintf("  nodeSelector: {%s: %s}\n", corev1.LabelHostname, hostname)))
		l.cleanupPod(t, pod)
		l.unschedulable(t, pod, "volume node affinity conflict")
	})
}

// localSuite is the state the suite's subtests share.
type localSuite struct {
	s        *framework.Server
	cs       kubernetes.Interface
	ns       string
	class    string
	hostname string
	n        int
}

// localVolume is a local PersistentVolume and the claim of it.
type localVolume struct {
	name  string // of the volume; the claim is name-pvc
	claim string
	path  string // on the node
}

// volume makes a local PersistentVolume of the suite's class at path (a
// new directory on the node if empty) with node affinity to hostname, and
// a claim of the class. A pre-bound volume names the claim in its
// claimRef; else the claim waits for its first consumer. Both are deleted when the test ends.
func (l *localSuite) volume(t *testing.T, path, hostname string, preBound bool) *localVolume {
	t.Helper()
	if path == "" {
		path = t.TempDir()
	}
	l.n++
	v := &localVolume{name: fmt.Sprintf("local-pv-%d", l.n), path: path}
	v.claim = v.name + "-pvc"
	fs := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: v.name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              l.class,
			VolumeMode:                    &fs,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname},
				}}}},
			}},
		},
	}
	if preBound {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: l.ns, Name: v.claim}
	}
	if _, err := l.cs.CoreV1().PersistentVolumes().Create(ctx(t), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.deleteVolume(t, v) })
	if _, err := l.cs.CoreV1().PersistentVolumeClaims(l.ns).Create(ctx(t), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: v.claim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &l.class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !preBound {
		// Upstream checks that a claim of a WaitForFirstConsumer class is
		// not bound before its pod.
		waitEvent(t, l.cs, l.ns, "PersistentVolumeClaim", v.claim, "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
		c, err := l.cs.CoreV1().PersistentVolumeClaims(l.ns).Get(ctx(t), v.claim, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" {
			t.Fatalf("claim %s without a consumer: phase %s, volume %q; want Pending and unbound", v.claim, c.Status.Phase, c.Spec.VolumeName)
		}
	}
	return v
}

// deleteVolume deletes a volume's claim, then the volume, and waits until
// both are gone (the protection finalizers let them go once no pod uses
// them).
func (l *localSuite) deleteVolume(t *testing.T, v *localVolume) {
	c, cancel := cleanupContext()
	defer cancel()
	if err := l.cs.CoreV1().PersistentVolumeClaims(l.ns).Delete(c, v.claim, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting claim %s: %v", v.claim, err)
	}
	if err := l.cs.CoreV1().PersistentVolumes().Delete(c, v.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting volume %s: %v", v.name, err)
	}
	err := framework.WaitForContext(c, func() (bool, error) {
		_, cerr := l.cs.CoreV1().PersistentVolumeClaims(l.ns).Get(c, v.claim, metav1.GetOptions{})
		_, verr := l.cs.CoreV1().PersistentVolumes().Get(c, v.name, metav1.GetOptions{})
		return apierrors.IsNotFound(cerr) && apierrors.IsNotFound(verr), nil
	})
	if err != nil {
		t.Errorf("claim %s and volume %s gone: %v", v.claim, v.name, err)
	}
}

// pod starts a pod of the web image mounting the volume's claim (extra:
// more of its spec) and checks that it runs on the volume's node.
func (l *localSuite) pod(t *testing.T, v *localVolume, name, extra string) string {
	t.Helper()
	name = v.name + "-" + name
	apply(t, l.s, l.ns, claimPod(name, v.claim, extra))
	l.cleanupPod(t, name)
	p := waitPod(t, l.s, l.ns, name)
	if p.Spec.NodeName != nodeName {
		t.Fatalf("pod %s on node %q, want the volume's %s", name, p.Spec.NodeName, nodeName)
	}
	return name
}

// cleanupPod deletes the pod when the test ends, before its volume.
func (l *localSuite) cleanupPod(t *testing.T, name string) {
	t.Cleanup(func() {
		c, cancel := cleanupContext()
		defer cancel()
		err := l.cs.CoreV1().Pods(l.ns).Delete(c, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if err == nil {
			err = framework.WaitForContext(c, func() (bool, error) {
				_, err := l.cs.CoreV1().Pods(l.ns).Get(c, name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), nil
			})
		}
		if err != nil {
			t.Errorf("deleting pod %s: %v", name, err)
		}
	})
}

// write writes text to the test file of the pod's volume.
func (l *localSuite) write(t *testing.T, pod, text string) {
	t.Helper()
	podExec(t, l.s, l.ns, pod, "write", localMount+"/"+localTestFile, text)
}

// read checks that the pod reads text from the test file of its volume.
func (l *localSuite) read(t *testing.T, pod, text string) {
	t.Helper()
	if got := podExec(t, l.s, l.ns, pod, "cat", localMount+"/"+localTestFile); !strings.Contains(got, text) {
		t.Fatalf("pod %s reads %q from %s/%s, want %q", pod, got, localMount, localTestFile, text)
	}
}

// onNode checks that the test file is in the volume's directory on the
// node: the pod's volume is the PersistentVolume's path.
func (v *localVolume) onNode(t *testing.T, text string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v.path, localTestFile))
	if err != nil {
		t.Fatalf("the pod's file on the node: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != text {
		t.Fatalf("%s on the node holds %q, want %q", filepath.Join(v.path, localTestFile), got, text)
	}
}

// fsGroupPod starts a pod (running as root, as upstream's) with fsGroup
// mounting the volume's claim and checks that its volume's group is
// fsGroup.
func (l *localSuite) fsGroupPod(t *testing.T, v *localVolume, name string, fsGroup int64) string {
	t.Helper()
	pod := l.pod(t, v, name, fmt.Sprintf("  securityContext: {fsGroup: %d}\n", fsGroup))
	f := strings.Fields(podExec(t, l.s, l.ns, pod, "stat", localMount))
	if len(f) != 3 || f[1] != fmt.Sprint(fsGroup) {
		t.Fatalf("pod %s: stat %s = %q (uid gid mode), want group %d", pod, localMount, f, fsGroup)
	}
	return pod
}

// unschedulable waits for the pod's FailedScheduling event saying reason,
// and checks that the pod is not scheduled, as upstream's
// WaitForPodNameUnschedulableInNamespace does.
func (l *localSuite) unschedulable(t *testing.T, pod, reason string) {
	t.Helper()
	msg := waitEvent(t, l.cs, l.ns, "Pod", pod, "FailedScheduling", reason)
	t.Logf("FailedScheduling: %s", msg)
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		p, err := l.cs.CoreV1().Pods(l.ns).Get(ctx(t), pod, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			return false, fmt.Errorf("pod %s was scheduled to %s", pod, p.Spec.NodeName)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable, nil
			}
		}
		return false, nil
	}, "pod %s PodScheduled False Unschedulable", pod)
}

// cleanupContext bounds one cleanup step (the test's own context is done
// by the time cleanups run).
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitTimeout)
}

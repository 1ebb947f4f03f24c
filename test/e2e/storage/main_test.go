// Package storage_test checks Havre's storage end to end on real
// containerd: claims of the built-in local class bound, provisioned,
// mounted, expanded, snapshotted and reclaimed, statically provisioned
// local PersistentVolumes as upstream's PersistentVolumes-local suite uses
// them, and a real PostgreSQL keeping its rows on a claim.
package storage_test

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	nodeName      = "havre-e2e"
	webImage      = "havre.local/e2e-web:v1"
	postgresImage = "havre.local/e2e-postgres:v1"
	// waitTimeout bounds every wait for pods and claims.
	waitTimeout = 120 * time.Second
)

var ctx = framework.RequestContext

// startNode starts a server with its agent and waits for its node. The
// node keeps its local volumes under its data dir (this machine's ext4:
// the plain-directory backing).
func startNode(t testing.TB, images ...string) *framework.Server {
	t.Helper()
	return startNodeWith(t, nil, images...)
}

// startNodeWith is startNode with more server arguments.
func startNodeWith(t testing.TB, args []string, images ...string) *framework.Server {
	t.Helper()
	framework.RequireNodeAgent(t)
	s := framework.StartServer(t, framework.WithAgent(), framework.WithArgs(append([]string{"--node-name", nodeName}, args...)...))
	waitNodeReady(t, s.Clientset(), nodeName)
	for _, img := range images {
		s.ImportImage(t, img)
	}
	return s
}

func waitNodeReady(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	framework.Eventually(t, 60*time.Second, func() (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
			}
		}
		return false, nil
	}, "node %s Ready", name)
}

// waitPod waits for a pod to be Running and Ready; on failure it shows
// the pod's description and logs.
func waitPod(t testing.TB, s *framework.Server, ns, name string) *corev1.Pod {
	t.Helper()
	cs := s.Clientset()
	var pod *corev1.Pod
	err := framework.WaitFor(waitTimeout, func() (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pod = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		desc, _, _ := s.Kubectl("-n", ns, "describe", "pod", name)
		logs, _, _ := s.Kubectl("-n", ns, "logs", name, "--all-containers")
		t.Fatalf("pod %s/%s ready: %v\n%s\nlogs:\n%s", ns, name, err, desc, logs)
	}
	return pod
}

// psql runs SQL in a PostgreSQL pod and returns psql's unaligned output.
func psql(t testing.TB, s *framework.Server, ns, pod, sql string) string {
	t.Helper()
	var out string
	// The server accepts connections a moment after its container is
	// Running (the readiness probe says when); retry only until then.
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		o, stderr, err := s.Kubectl("-n", ns, "exec", pod, "--", "/postgres", "psql", "-At", "-c", sql)
		if err != nil {
			if strings.Contains(stderr, "the database system is starting up") || strings.Contains(stderr, "No such file or directory") {
				return false, nil
			}
			return false, &psqlError{sql: sql, stderr: stderr, err: err}
		}
		out = strings.TrimSpace(o)
		return true, nil
	}, "psql %q in %s", sql, pod)
	return out
}

type psqlError struct {
	sql, stderr string
	err         error
}

func (e *psqlError) Error() string { return "psql " + e.sql + ": " + e.err.Error() + ": " + e.stderr }

// btrfsDir returns the mount point of a btrfs filesystem of size bytes made
// for the test in a loop-mounted image file, unmounted (lazily: the node's
// pods may still hold it) and removed when the test ends.
func btrfsDir(t testing.TB, size int64) string {
	t.Helper()
	if _, err := osexec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs is missing (btrfs-progs; hack/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "btrfs.img"), filepath.Join(dir, "mnt")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err == nil {
		err = os.Mkdir(mnt, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"mkfs.btrfs", "-q", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := osexec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := osexec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

package workloads_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

// Annotations of the Deployment controller.
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	desiredAnnotation         = "deployment.kubernetes.io/desired-replicas"
	maxAnnotation             = "deployment.kubernetes.io/max-replicas"
)

// TestDeployments runs the Deployment scenarios in parallel, each in a
// namespace of its own with its own fake node, on one server.
func TestDeployments(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *framework.Server, ns string, node *fakeNode)
	}{
		{"RollsOut", testRollsOut},
		{"Scale", testScale},
		{"RollingUpdateKeepsReadyPods", testRollingUpdateKeepsReadyPods},
		{"HistoryAndUndo", testHistoryAndUndo},
		{"PauseResume", testPauseResume},
		{"Restart", testRestart},
		{"Recreate", testRecreate},
		{"ProgressDeadlineExceeded", testProgressDeadlineExceeded},
		{"DeleteBackground", func(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
			testDelete(t, s, ns, "background")
		}},
		{"DeleteForeground", func(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
			testDelete(t, s, ns, "foreground")
		}},
		{"DeleteOrphan", func(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
			testDelete(t, s, ns, "orphan")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t, s.Clientset(), strings.ToLower(tc.name))
			node := startFakeNode(t, s, ns, 4)
			tc.run(t, s, ns, node)
		})
	}
}

// rolloutStatus runs `kubectl rollout status` to completion.
func rolloutStatus(t *testing.T, s *framework.Server, ns, name string) string {
	t.Helper()
	return s.MustKubectl(t, "-n", ns, "rollout", "status", "deployment/"+name, "--timeout=90s")
}

func testRollsOut(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: example.com/web:v1
`
	s.MustKubectlStdin(t, manifest, "-n", ns, "apply", "-f", "-")
	out := rolloutStatus(t, s, ns, "web")
	if !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Errorf("rollout status said %q", out)
	}
	d := getDeployment(t, cs, ns, "web")
	if !complete(d) || d.Status.ReadyReplicas != 3 || d.Status.UnavailableReplicas != 0 {
		t.Errorf("status after rollout: %s", describe(d))
	}
	if d.Annotations[revisionAnnotation] != "1" {
		t.Errorf("deployment revision %q, want 1", d.Annotations[revisionAnnotation])
	}
	if c := condition(d, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available condition %+v", c)
	}
	if c := condition(d, appsv1.DeploymentProgressing); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "NewReplicaSetAvailable" {
		t.Errorf("Progressing condition %+v", c)
	}
	sets := replicaSets(t, cs, d)
	if len(sets) != 1 {
		t.Fatalf("%d replica sets, want 1", len(sets))
	}
	rs := sets[0]
	hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replica set %s labels %v selector %v: want web-<pod-template-hash>", rs.Name, rs.Labels, rs.Spec.Selector)
	}
	if rs.Annotations[revisionAnnotation] != "1" || rs.Annotations[desiredAnnotation] != "3" || rs.Annotations[maxAnnotation] != "4" {
		t.Errorf("replica set annotations %v", rs.Annotations)
	}
	if rs.Status.Replicas != 3 || rs.Status.ReadyReplicas != 3 || rs.Status.AvailableReplicas != 3 || rs.Status.FullyLabeledReplicas != 3 || rs.Status.ObservedGeneration != rs.Generation {
		t.Errorf("replica set status %+v", rs.Status)
	}
	pods := podsOf(t, cs, ns, "web")
	if len(pods) != 3 {
		t.Fatalf("%d pods, want 3", len(pods))
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || !strings.HasPrefix(p.Name, rs.Name+"-") || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Errorf("pod %s: controller %+v labels %v", p.Name, ref, p.Labels)
		}
	}
	// What `kubectl get` and describe show.
	get := s.MustKubectl(t, "-n", ns, "get", "deployment", "web")
	if !strings.Contains(get, "3/3") {
		t.Errorf("kubectl get deployment:\n%s", get)
	}
	events := s.MustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Deployment")
	if !strings.Contains(events, "ScalingReplicaSet") || !strings.Contains(events, "Scaled up replica set "+rs.Name+" from 0 to 3") {
		t.Errorf("deployment events:\n%s", events)
	}
}

func testScale(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	createDeployment(t, cs, ns, deployment("web", 2, "example.com/web:v1"))
	rolloutStatus(t, s, ns, "web")
	for _, n := range []int32{5, 1, 0, 3} {
		s.MustKubectl(t, "-n", ns, "scale", "deployment/web", fmt.Sprintf("--replicas=%d", n))
		d := waitDeployment(t, cs, ns, "web", fmt.Sprintf("scaled to %d", n), func(d *appsv1.Deployment) bool {
			return complete(d) && d.Status.ReadyReplicas == n
		})
		if pods := podsOf(t, cs, ns, "web"); len(pods) != int(n) {
			t.Errorf("scaled to %d: %d pods", n, len(pods))
		}
		sets := replicaSets(t, cs, d)
		if len(sets) != 1 || *sets[0].Spec.Replicas != n || sets[0].Annotations[desiredAnnotation] != fmt.Sprint(n) {
			t.Errorf("scaled to %d: replica sets %v", n, sets)
		}
	}
}

// readyWatcher follows a namespace's pods and records the fewest Ready
// (and not terminating) pods of an app seen at any moment after arm.
type readyWatcher struct {
	mu    sync.Mutex
	ready map[string]bool
	armed bool
	min   int
	err   error
	done  chan struct{}
}

func watchReady(t *testing.T, cs kubernetes.Interface, ns, app string) *readyWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &readyWatcher{ready: map[string]bool{}, min: 1 << 30, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				if ev.Type == watch.Error {
					r.mu.Lock()
					r.err = apierrors.FromObject(ev.Object)
					r.mu.Unlock()
				}
				continue
			}
			r.mu.Lock()
			r.ready[p.Name] = ev.Type != watch.Deleted && p.DeletionTimestamp == nil && podReady(p)
			if r.armed {
				r.min = min(r.min, r.count())
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		<-r.done
	})
	return r
}

func (r *readyWatcher) count() int {
	n := 0
	for _, ok := range r.ready {
		if ok {
			n++
		}
	}
	return n
}

// arm starts recording once want pods are Ready.
func (r *readyWatcher) arm(t *testing.T, want int) {
	t.Helper()
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.count() >= want {
			r.armed, r.min = true, r.count()
			return true, r.err
		}
		return false, r.err
	}, "%d ready pods seen by the watch", want)
}

func (r *readyWatcher) minimum() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.min, r.err
}

func testRollingUpdateKeepsReadyPods(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	d := withStrategy(deployment("web", 3, "example.com/web:v1"), intstr.FromInt32(1), intstr.FromInt32(0))
	createDeployment(t, cs, ns, d)
	rolloutStatus(t, s, ns, "web")
	w := watchReady(t, cs, ns, "web")
	w.arm(t, 3)

	s.MustKubectl(t, "-n", ns, "set", "image", "deployment/web", "app=example.com/web:v2")
	rolloutStatus(t, s, ns, "web")
	d = waitDeployment(t, cs, ns, "web", "rolled to v2", complete)
	if d.Annotations[revisionAnnotation] != "2" {
		t.Errorf("revision %q after an image change, want 2", d.Annotations[revisionAnnotation])
	}
	pods := podsOf(t, cs, ns, "web")
	if len(pods) != 3 {
		t.Errorf("%d pods after the rollout, want 3", len(pods))
	}
	for _, p := range pods {
		if image(&p) != "example.com/web:v2" {
			t.Errorf("pod %s still runs %s", p.Name, image(&p))
		}
	}
	// The watch saw every pod of the rollout come and go.
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.count() == 3 && len(w.ready) >= 6, nil
	}, "the watch sees the 3 new pods ready")
	if m, err := w.minimum(); err != nil || m < 3 {
		t.Errorf("with maxUnavailable=0, the fewest ready pods during the rollout was %d (want >= 3); watch error %v", m, err)
	}
	for _, rs := range replicaSets(t, cs, d) {
		if rs.Spec.Template.Spec.Containers[0].Image == "example.com/web:v1" && (*rs.Spec.Replicas != 0 || rs.Status.Replicas != 0) {
			t.Errorf("old replica set %s not scaled down: spec %d status %d", rs.Name, *rs.Spec.Replicas, rs.Status.Replicas)
		}
	}
}

func testHistoryAndUndo(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	createDeployment(t, cs, ns, deployment("web", 2, "example.com/web:v1"))
	rolloutStatus(t, s, ns, "web")
	for _, v := range []string{"v2", "v3"} {
		s.MustKubectl(t, "-n", ns, "set", "image", "deployment/web", "app=example.com/web:"+v)
		s.MustKubectl(t, "-n", ns, "annotate", "deployment/web", "kubernetes.io/change-cause=image "+v, "--overwrite")
		rolloutStatus(t, s, ns, "web")
	}
	hist := s.MustKubectl(t, "-n", ns, "rollout", "history", "deployment/web")
	for _, want := range []string{"REVISION", "CHANGE-CAUSE", "1 ", "2 ", "3 ", "image v3"} {
		if !strings.Contains(hist, want) {
			t.Errorf("rollout history lacks %q:\n%s", want, hist)
		}
	}
	rev2 := s.MustKubectl(t, "-n", ns, "rollout", "history", "deployment/web", "--revision=2")
	if !strings.Contains(rev2, "example.com/web:v2") {
		t.Errorf("rollout history --revision=2:\n%s", rev2)
	}

	// Undo goes back to the previous revision's template (v2) as revision 4.
	s.MustKubectl(t, "-n", ns, "rollout", "undo", "deployment/web")
	rolloutStatus(t, s, ns, "web")
	d := waitDeployment(t, cs, ns, "web", "undone to v2 as revision 4", func(d *appsv1.Deployment) bool {
		return complete(d) && d.Annotations[revisionAnnotation] == "4"
	})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v2" {
		t.Errorf("template image after undo: %s, want v2", img)
	}
	var v2 *appsv1.ReplicaSet
	for _, rs := range replicaSets(t, cs, d) {
		if rs.Spec.Template.Spec.Containers[0].Image == "example.com/web:v2" {
			v2 = &rs
		}
	}
	if v2 == nil || v2.Annotations[revisionAnnotation] != "4" || v2.Annotations[revisionHistoryAnnotation] != "2" {
		t.Fatalf("the v2 replica set is not reused as revision 4 (history 2): %+v", v2)
	}
	if len(replicaSets(t, cs, d)) != 3 {
		t.Errorf("undo created a replica set: %d, want 3", len(replicaSets(t, cs, d)))
	}
	for _, p := range podsOf(t, cs, ns, "web") {
		if image(&p) != "example.com/web:v2" {
			t.Errorf("pod %s runs %s after undo", p.Name, image(&p))
		}
	}

	// Undo to a given revision.
	s.MustKubectl(t, "-n", ns, "rollout", "undo", "deployment/web", "--to-revision=1")
	rolloutStatus(t, s, ns, "web")
	d = waitDeployment(t, cs, ns, "web", "undone to v1 as revision 5", func(d *appsv1.Deployment) bool {
		return complete(d) && d.Annotations[revisionAnnotation] == "5"
	})
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:v1" {
		t.Errorf("template image after undo --to-revision=1: %s", img)
	}
	hist = s.MustKubectl(t, "-n", ns, "rollout", "history", "deployment/web")
	for _, want := range []string{"3 ", "4 ", "5 "} {
		if !strings.Contains(hist, want) {
			t.Errorf("rollout history after undos lacks revision %q:\n%s", want, hist)
		}
	}
}

func testPauseResume(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	createDeployment(t, cs, ns, deployment("web", 2, "example.com/web:v1"))
	rolloutStatus(t, s, ns, "web")
	s.MustKubectl(t, "-n", ns, "rollout", "pause", "deployment/web")
	s.MustKubectl(t, "-n", ns, "set", "image", "deployment/web", "app=example.com/web:v2")
	s.MustKubectl(t, "-n", ns, "scale", "deployment/web", "--replicas=3")
	// The controller saw the change (observedGeneration) and recorded the
	// pause, but rolled nothing: it only scaled.
	d := waitDeployment(t, cs, ns, "web", "paused and scaled", func(d *appsv1.Deployment) bool {
		c := condition(d, appsv1.DeploymentProgressing)
		return d.Status.ObservedGeneration >= d.Generation && c != nil && c.Reason == "DeploymentPaused" &&
			c.Status == corev1.ConditionUnknown && d.Status.AvailableReplicas == 3
	})
	if sets := replicaSets(t, cs, d); len(sets) != 1 || sets[0].Spec.Template.Spec.Containers[0].Image != "example.com/web:v1" {
		t.Fatalf("a paused deployment rolled: %d replica sets", len(sets))
	}
	if d.Status.UpdatedReplicas != 0 {
		t.Errorf("updatedReplicas %d while paused with a new template", d.Status.UpdatedReplicas)
	}
	s.MustKubectl(t, "-n", ns, "rollout", "resume", "deployment/web")
	rolloutStatus(t, s, ns, "web")
	d = waitDeployment(t, cs, ns, "web", "resumed and rolled to v2", complete)
	if d.Annotations[revisionAnnotation] != "2" || !strings.Contains(condition(d, appsv1.DeploymentProgressing).Reason, "NewReplicaSetAvailable") {
		t.Errorf("after resume: revision %q, %s", d.Annotations[revisionAnnotation], describe(d))
	}
	for _, p := range podsOf(t, cs, ns, "web") {
		if image(&p) != "example.com/web:v2" {
			t.Errorf("pod %s runs %s after resume", p.Name, image(&p))
		}
	}
}

func testRestart(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	createDeployment(t, cs, ns, deployment("web", 2, "example.com/web:v1"))
	rolloutStatus(t, s, ns, "web")
	before := map[string]bool{}
	for _, p := range podsOf(t, cs, ns, "web") {
		before[p.Name] = true
	}
	s.MustKubectl(t, "-n", ns, "rollout", "restart", "deployment/web")
	rolloutStatus(t, s, ns, "web")
	d := waitDeployment(t, cs, ns, "web", "restarted", func(d *appsv1.Deployment) bool {
		return complete(d) && d.Annotations[revisionAnnotation] == "2"
	})
	if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("template annotations %v", d.Spec.Template.Annotations)
	}
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		pods := podsOf(t, cs, ns, "web")
		for _, p := range pods {
			if before[p.Name] {
				return false, nil
			}
		}
		return len(pods) == 2, nil
	}, "every pod replaced by the restart")
}

func testRecreate(t *testing.T, s *framework.Server, ns string, _ *fakeNode) {
	cs := s.Clientset()
	d := deployment("web", 3, "example.com/web:v1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	createDeployment(t, cs, ns, d)
	rolloutStatus(t, s, ns, "web")

	// Watch: no v2 pod may be created while a v1 pod still exists.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	violations := make(chan string, 1)
	go func() {
		live := map[string]string{} // name → image
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(live, p.Name)
				continue
			}
			live[p.Name] = image(p)
			if image(p) != "example.com/web:v2" {
				continue
			}
			for name, img := range live {
				if img == "example.com/web:v1" {
					select {
					case violations <- fmt.Sprintf("v2 pod %s exists beside v1 pod %s", p.Name, name):
					default:
					}
				}
			}
		}
	}()
	s.MustKubectl(t, "-n", ns, "set", "image", "deployment/web", "app=example.com/web:v2")
	rolloutStatus(t, s, ns, "web")
	waitDeployment(t, cs, ns, "web", "recreated on v2", complete)
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		pods := podsOf(t, cs, ns, "web")
		for _, p := range pods {
			if image(&p) != "example.com/web:v2" {
				return false, nil
			}
		}
		return len(pods) == 3, nil
	}, "3 v2 pods")
	select {
	case v := <-violations:
		t.Errorf("Recreate overlapped old and new pods: %s", v)
	default:
	}
}

func testProgressDeadlineExceeded(t *testing.T, s *framework.Server, ns string, node *fakeNode) {
	cs := s.Clientset()
	node.holdNotReady("example.com/web:broken")
	d := deployment("web", 2, "example.com/web:v1")
	d.Spec.ProgressDeadlineSeconds = new(int32(3))
	createDeployment(t, cs, ns, d)
	rolloutStatus(t, s, ns, "web")
	s.MustKubectl(t, "-n", ns, "set", "image", "deployment/web", "app=example.com/web:broken")
	d = waitDeployment(t, cs, ns, "web", "Progressing=False ProgressDeadlineExceeded", func(d *appsv1.Deployment) bool {
		c := condition(d, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
	})
	if c := condition(d, appsv1.DeploymentProgressing); !strings.HasSuffix(c.Message, "has timed out progressing.") {
		t.Errorf("message %q", c.Message)
	}
	// The old pods keep serving: maxUnavailable (25% of 2 = 0 → 1 when
	// surge is 1) leaves at least one available.
	if c := condition(d, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("Available %+v", c)
	}
	out, errOut, err := s.Kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=30s")
	if err == nil {
		t.Fatalf("rollout status succeeded past the progress deadline:\n%s", out)
	}
	if !strings.Contains(errOut, `deployment "web" exceeded its progress deadline`) {
		t.Errorf("rollout status: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
}

func testDelete(t *testing.T, s *framework.Server, ns, cascade string) {
	cs := s.Clientset()
	createDeployment(t, cs, ns, deployment("web", 2, "example.com/web:v1"))
	rolloutStatus(t, s, ns, "web")
	d := getDeployment(t, cs, ns, "web")
	sets := replicaSets(t, cs, d)
	if len(sets) != 1 {
		t.Fatalf("%d replica sets", len(sets))
	}
	rsName := sets[0].Name
	s.MustKubectl(t, "-n", ns, "delete", "deployment/web", "--cascade="+cascade, "--wait=true", "--timeout=60s")
	if _, err := cs.AppsV1().Deployments(ns).Get(ctxFor(t), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deployment still there after kubectl delete --wait: %v", err)
	}
	switch cascade {
	case "orphan":
		rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctxFor(t), rsName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("orphaned replica set: %v", err)
		}
		if ref := metav1.GetControllerOf(rs); ref != nil {
			t.Errorf("orphaned replica set still has controller %+v", ref)
		}
		// Its pods stay, still owned by it.
		if pods := podsOf(t, cs, ns, "web"); len(pods) != 2 {
			t.Errorf("%d pods after orphaning, want 2", len(pods))
		}
	case "foreground":
		// The Deployment went only after its dependents: nothing is left.
		if _, err := cs.AppsV1().ReplicaSets(ns).Get(ctxFor(t), rsName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("replica set after foreground deletion: %v", err)
		}
		if pods, _ := cs.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{}); len(pods.Items) != 0 {
			t.Errorf("%d pods left after foreground deletion", len(pods.Items))
		}
	default:
		framework.Eventually(t, rolloutTimeout, func() (bool, error) {
			_, err := cs.AppsV1().ReplicaSets(ns).Get(ctxFor(t), rsName, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return false, err
			}
			pods, err := cs.CoreV1().Pods(ns).List(ctxFor(t), metav1.ListOptions{})
			return err == nil && len(pods.Items) == 0, err
		}, "replica set and pods collected in the background")
	}
}

// TestReplicaSet checks a bare ReplicaSet: pods from its template, orphan
// adoption, release of relabelled pods, and replacement of deleted pods.
func TestReplicaSet(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	ns := newNamespace(t, cs, "rs")
	startFakeNode(t, s, ns, 2)
	// An orphan pod the ReplicaSet will adopt.
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Labels: map[string]string{"app": "rs"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/web:v1"}}, TerminationGracePeriodSeconds: new(int64(1))},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctxFor(t), orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := deployment("rs", 3, "example.com/web:v1")
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctxFor(t), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "rs"},
		Spec:       appsv1.ReplicaSetSpec{Replicas: new(int32(3)), Selector: d.Spec.Selector, Template: d.Spec.Template, MinReadySeconds: 1},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRS := func(what string, cond func(*appsv1.ReplicaSet) bool) {
		t.Helper()
		var last appsv1.ReplicaSetStatus
		err := framework.WaitFor(rolloutTimeout, func() (bool, error) {
			r, err := cs.AppsV1().ReplicaSets(ns).Get(ctxFor(t), "rs", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			last = r.Status
			return cond(r), nil
		})
		if err != nil {
			t.Fatalf("replica set: %s: %v (last status %+v)", what, err, last)
		}
	}
	waitRS("3 available", func(r *appsv1.ReplicaSet) bool {
		return r.Status.AvailableReplicas == 3 && r.Status.ReadyReplicas == 3 && r.Status.FullyLabeledReplicas == 3 && r.Status.ObservedGeneration == r.Generation
	})
	stray, err := cs.CoreV1().Pods(ns).Get(ctxFor(t), "stray", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(stray); ref == nil || ref.UID != rs.UID {
		t.Errorf("the orphan was not adopted: owner %+v", ref)
	}
	if pods := podsOf(t, cs, ns, "rs"); len(pods) != 3 {
		t.Errorf("%d pods, want 3 (2 created + the adopted one)", len(pods))
	}

	// Relabelling a pod out of the selector releases it; a replacement
	// comes.
	if _, err := cs.CoreV1().Pods(ns).Patch(ctxFor(t), "stray", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"app":"gone"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctxFor(t), "stray", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return metav1.GetControllerOf(p) == nil && len(podsOf(t, cs, ns, "rs")) == 3, nil
	}, "the relabelled pod released and replaced")

	// A deleted pod is replaced.
	victim := podsOf(t, cs, ns, "rs")[0].Name
	if err := cs.CoreV1().Pods(ns).Delete(ctxFor(t), victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, rolloutTimeout, func() (bool, error) {
		pods := podsOf(t, cs, ns, "rs")
		for _, p := range pods {
			if p.Name == victim {
				return false, nil
			}
		}
		return len(pods) == 3, nil
	}, "the deleted pod replaced")
	waitRS("3 available again", func(r *appsv1.ReplicaSet) bool { return r.Status.AvailableReplicas == 3 })

	events := s.MustKubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=ReplicaSet")
	if !strings.Contains(events, "SuccessfulCreate") || !strings.Contains(events, "Created pod: rs-") {
		t.Errorf("replica set events:\n%s", events)
	}
}

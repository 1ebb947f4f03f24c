package deployment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newDeployment(replicas int32, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-web", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(image),
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: new(intstr.FromString("25%")), MaxUnavailable: new(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit:    new(int32(10)),
			ProgressDeadlineSeconds: new(int32(600)),
		},
	}
}

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
	}
}

func recreate(d *appsv1.Deployment) *appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return d
}

// rsOf is a ReplicaSet of d for image: spec and available replicas,
// revision, created age ago.
func rsOf(d *appsv1.Deployment, image string, replicas, available int32, revision int, age time.Duration) *appsv1.ReplicaSet {
	tmpl := template(image)
	hash := ComputeHash(&tmpl, nil)
	tmpl.Labels = withLabel(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID("uid-" + image),
			Labels:            tmpl.Labels,
			CreationTimestamp: metav1.NewTime(testNow.Add(-age)),
			Generation:        1,
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Annotations: map[string]string{
				RevisionAnnotation:        fmt.Sprint(revision),
				DesiredReplicasAnnotation: fmt.Sprint(*d.Spec.Replicas),
				MaxReplicasAnnotation:     fmt.Sprint(*d.Spec.Replicas + MaxSurge(d)),
			},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: tmpl,
		},
		Status: appsv1.ReplicaSetStatus{
			Replicas: replicas, ReadyReplicas: available, AvailableReplicas: available, ObservedGeneration: 1,
			TerminatingReplicas: new(int32(0)),
		},
	}
}

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	c        *Controller
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, d *appsv1.Deployment, objs ...runtime.Object) *fixture {
	t.Helper()
	all := append([]runtime.Object{d}, objs...)
	f := &fixture{t: t, client: fake.NewClientset(all...), recorder: record.NewFakeRecorder(100)}
	factory := informers.NewSharedInformerFactory(f.client, 0)
	c, err := New(f.client, factory, f.recorder)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return testNow }
	for _, o := range all {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			err = factory.Apps().V1().Deployments().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f.c = c
	return f
}

func (f *fixture) sync() {
	f.t.Helper()
	if err := f.c.sync(context.Background(), "ns/web"); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

func (f *fixture) deployment() *appsv1.Deployment {
	d, err := f.client.AppsV1().Deployments("ns").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// sets returns "image=replicas@revision" of the stored ReplicaSets, sorted.
func (f *fixture) sets() []string {
	list, err := f.client.AppsV1().ReplicaSets("ns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, rs := range list.Items {
		out = append(out, fmt.Sprintf("%s=%d@%s", rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, rs.Annotations[RevisionAnnotation]))
	}
	sort.Strings(out)
	return out
}

func (f *fixture) progressing() string {
	c := GetCondition(f.deployment().Status, appsv1.DeploymentProgressing)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason
}

func TestRollout(t *testing.T) {
	for _, tc := range []struct {
		name            string
		d               *appsv1.Deployment
		objs            func(d *appsv1.Deployment) []runtime.Object
		wantSets        []string
		wantRevision    string
		wantProgressing string
		wantEvents      []string
	}{{
		name:            "a new deployment creates its replica set at full size",
		d:               newDeployment(4, "v1"),
		objs:            func(*appsv1.Deployment) []runtime.Object { return nil },
		wantSets:        []string{"v1=4@1"},
		wantRevision:    "1",
		wantProgressing: "True/NewReplicaSetCreated",
		wantEvents:      []string{"Normal ScalingReplicaSet Scaled up replica set web-"},
	}, {
		name: "a template change surges a new replica set",
		d:    newDeployment(4, "v2"),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 4, 4, 1, time.Hour)}
		},
		// The new set is created at maxSurge (1); the old one, all
		// available, loses maxUnavailable (1) in the same sync.
		wantSets:        []string{"v1=3@1", "v2=1@2"},
		wantRevision:    "2",
		wantProgressing: "True/ReplicaSetUpdated",
	}, {
		name: "old replicas go down within maxUnavailable",
		d:    newDeployment(4, "v2"),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 4, 4, 1, time.Hour), rsOf(d, "v2", 1, 1, 2, time.Minute)}
		},
		wantSets:   []string{"v1=2@1", "v2=1@2"},
		wantEvents: []string{"Normal ScalingReplicaSet Scaled down replica set web-"},
	}, {
		name: "unavailable old replicas go first",
		d:    newDeployment(4, "v2"),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 4, 1, 1, time.Hour), rsOf(d, "v2", 1, 0, 2, time.Minute)}
		},
		// allPods 5 - minAvailable 3 - new unavailable 1 = 1 may go.
		wantSets: []string{"v1=3@1", "v2=1@2"},
	}, {
		name: "maxUnavailable 0 keeps old replicas until new ones are available",
		d: func() *appsv1.Deployment {
			d := newDeployment(4, "v2")
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(0))
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 4, 4, 1, time.Hour), rsOf(d, "v2", 1, 0, 2, time.Minute)}
		},
		wantSets: []string{"v1=4@1", "v2=1@2"},
	}, {
		name: "a stale available count of a shrunk old replica set is not trusted",
		d: func() *appsv1.Deployment {
			d := newDeployment(4, "v2")
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(0))
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			old := rsOf(d, "v1", 3, 4, 1, time.Hour) // just scaled 4 -> 3
			old.Status.Replicas = 4
			return []runtime.Object{old, rsOf(d, "v2", 1, 1, 2, time.Minute)}
		},
		wantSets: []string{"v1=3@1", "v2=2@2"},
	}, {
		name: "a complete rollout reports NewReplicaSetAvailable and prunes history",
		d: func() *appsv1.Deployment {
			d := newDeployment(2, "v4")
			d.Spec.RevisionHistoryLimit = new(int32(1))
			d.Annotations = map[string]string{RevisionAnnotation: "4"}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2}
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{
				rsOf(d, "v1", 0, 0, 1, 4*time.Hour), rsOf(d, "v2", 0, 0, 2, 3*time.Hour),
				rsOf(d, "v3", 0, 0, 3, 2*time.Hour), rsOf(d, "v4", 2, 2, 4, time.Hour),
			}
		},
		wantSets:        []string{"v3=0@3", "v4=2@4"},
		wantRevision:    "4",
		wantProgressing: "True/NewReplicaSetAvailable",
	}, {
		name: "rolling back makes the old replica set the newest revision",
		d: func() *appsv1.Deployment {
			d := newDeployment(2, "v1")
			d.Annotations = map[string]string{RevisionAnnotation: "2"}
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 0, 0, 1, 2*time.Hour), rsOf(d, "v2", 2, 2, 2, time.Hour)}
		},
		// The reused set gets revision 3 and surges; the Deployment's
		// annotation follows on the next sync, as upstream.
		wantSets: []string{"v1=1@3", "v2=2@2"},
	}, {
		name: "recreate scales old replica sets down first",
		d:    recreate(newDeployment(3, "v2")),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 3, 3, 1, time.Hour)}
		},
		wantSets: []string{"v1=0@1"},
	}, {
		name: "recreate waits for old pods to be gone",
		d:    recreate(newDeployment(3, "v2")),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			old := rsOf(d, "v1", 0, 0, 1, time.Hour)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
				Name: "old", Namespace: "ns", Labels: old.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(old, rsKind)},
			}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
			return []runtime.Object{old, pod}
		},
		wantSets: []string{"v1=0@1"},
	}, {
		name: "recreate creates the new replica set once old pods are gone",
		d:    recreate(newDeployment(3, "v2")),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			old := rsOf(d, "v1", 0, 0, 1, time.Hour)
			old.Status.Replicas = 0
			return []runtime.Object{old}
		},
		wantSets:     []string{"v1=0@1", "v2=3@2"},
		wantRevision: "2",
	}, {
		name: "a paused deployment does not roll",
		d: func() *appsv1.Deployment {
			d := newDeployment(2, "v2")
			d.Spec.Paused = true
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 2, 2, 1, time.Hour)}
		},
		wantSets:        []string{"v1=2@1"},
		wantProgressing: "Unknown/DeploymentPaused",
	}, {
		name: "a paused deployment still scales",
		d: func() *appsv1.Deployment {
			d := newDeployment(5, "v2")
			d.Spec.Paused = true
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 2, 2, 1, time.Hour)}
		},
		wantSets: []string{"v1=5@1"},
	}, {
		name: "resuming is recorded",
		d: func() *appsv1.Deployment {
			d := newDeployment(2, "v1")
			d.Status.Conditions = []appsv1.DeploymentCondition{newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused", testNow)}
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			return []runtime.Object{rsOf(d, "v1", 2, 2, 1, time.Hour)}
		},
		wantSets:        []string{"v1=2@1"},
		wantProgressing: "True/NewReplicaSetAvailable",
	}, {
		name: "scaling during a rollout is proportional",
		d: func() *appsv1.Deployment {
			d := newDeployment(20, "v2")
			d.Status.Replicas = 13
			return d
		}(),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			small := newDeployment(10, "v2") // annotations of the earlier size: max 13
			return []runtime.Object{rsOf(small, "v1", 8, 8, 1, time.Hour), rsOf(small, "v2", 5, 0, 2, time.Minute)}
		},
		// 20+5 allowed, 13 running: 12 to add, 8*25/13=15 (+7) and
		// 5*25/13=10 (+5).
		wantSets: []string{"v1=15@1", "v2=10@2"},
	}, {
		name: "an orphan replica set matching the selector is adopted",
		d:    newDeployment(2, "v1"),
		objs: func(d *appsv1.Deployment) []runtime.Object {
			rs := rsOf(d, "v1", 2, 2, 1, time.Hour)
			rs.OwnerReferences = nil
			return []runtime.Object{rs}
		},
		wantSets: []string{"v1=2@1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.d, tc.objs(tc.d)...)
			f.sync()
			if got := f.sets(); strings.Join(got, " ") != strings.Join(tc.wantSets, " ") {
				t.Errorf("replica sets %v, want %v", got, tc.wantSets)
			}
			d := f.deployment()
			if tc.wantRevision != "" && d.Annotations[RevisionAnnotation] != tc.wantRevision {
				t.Errorf("deployment revision %q, want %q", d.Annotations[RevisionAnnotation], tc.wantRevision)
			}
			if tc.wantProgressing != "" && f.progressing() != tc.wantProgressing {
				t.Errorf("Progressing %s, want %s", f.progressing(), tc.wantProgressing)
			}
			for _, want := range tc.wantEvents {
				select {
				case e := <-f.recorder.Events:
					if !strings.HasPrefix(e, want) {
						t.Errorf("event %q, want %q...", e, want)
					}
				default:
					t.Errorf("no event, want %q", want)
				}
			}
		})
	}
}

func TestNewReplicaSetShape(t *testing.T) {
	d := newDeployment(3, "v1")
	d.Annotations = map[string]string{"kubernetes.io/change-cause": "first", corev1.LastAppliedConfigAnnotation: "{}"}
	d.Spec.MinReadySeconds = 5
	f := newFixture(t, d)
	f.sync()
	list, _ := f.client.AppsV1().ReplicaSets("ns").List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 1 {
		t.Fatalf("%d replica sets", len(list.Items))
	}
	rs := list.Items[0]
	hash := ComputeHash(&d.Spec.Template, nil)
	ref := metav1.GetControllerOf(&rs)
	switch {
	case rs.Name != "web-"+hash:
		t.Errorf("name %s, want web-%s", rs.Name, hash)
	case rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || rs.Spec.Selector.MatchLabels["app"] != "web":
		t.Errorf("hash label missing: labels %v selector %v", rs.Labels, rs.Spec.Selector)
	case ref == nil || ref.UID != d.UID || ref.Kind != "Deployment":
		t.Errorf("controller %+v", ref)
	case rs.Annotations["kubernetes.io/change-cause"] != "first" || rs.Annotations[corev1.LastAppliedConfigAnnotation] != "":
		t.Errorf("annotations %v: want change-cause copied, last-applied not", rs.Annotations)
	case rs.Annotations[DesiredReplicasAnnotation] != "3" || rs.Annotations[MaxReplicasAnnotation] != "4":
		t.Errorf("replicas annotations %v", rs.Annotations)
	case rs.Spec.MinReadySeconds != 5:
		t.Errorf("minReadySeconds %d", rs.Spec.MinReadySeconds)
	}
	if f.deployment().Status.ObservedGeneration != 1 {
		t.Errorf("observedGeneration %d", f.deployment().Status.ObservedGeneration)
	}
}

func TestStatusCounts(t *testing.T) {
	d := newDeployment(4, "v2")
	old, cur := rsOf(d, "v1", 2, 2, 1, time.Hour), rsOf(d, "v2", 3, 1, 2, time.Minute)
	cur.Status.ReadyReplicas = 2
	cur.Status.TerminatingReplicas = new(int32(1))
	f := newFixture(t, d, old, cur)
	st := f.c.calculateStatus([]*appsv1.ReplicaSet{old, cur}, cur, d)
	want := fmt.Sprint(5, 3, 4, 3, 2, 1)
	got := fmt.Sprint(st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, st.UnavailableReplicas, *st.TerminatingReplicas)
	if got != want {
		t.Errorf("replicas updated ready available unavailable terminating = %s, want %s", got, want)
	}
	if c := GetCondition(st, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("Available %+v", c)
	}
	st = f.c.calculateStatus([]*appsv1.ReplicaSet{rsOf(d, "v1", 4, 2, 1, time.Hour)}, nil, d)
	if c := GetCondition(st, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionFalse || c.Reason != ReasonMinimumReplicasUnavailable {
		t.Errorf("Available with 2 of 4 (maxUnavailable 1): %+v", c)
	}
}

func TestProgressDeadline(t *testing.T) {
	d := newDeployment(2, "v2")
	d.Spec.ProgressDeadlineSeconds = new(int32(30))
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	old, cur := rsOf(d, "v1", 1, 1, 1, time.Hour), rsOf(d, "v2", 2, 0, 2, time.Hour)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 1, ReadyReplicas: 1, UnavailableReplicas: 2,
		TerminatingReplicas: new(int32(0)),
		Conditions: []appsv1.DeploymentCondition{
			newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", testNow),
			newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, "ReplicaSet is progressing.", testNow.Add(-time.Minute)),
		}}
	f := newFixture(t, d, old, cur)
	f.sync()
	if got := f.progressing(); got != "False/ProgressDeadlineExceeded" {
		t.Fatalf("Progressing %s after a minute without progress (deadline 30s)", got)
	}
	c := GetCondition(f.deployment().Status, appsv1.DeploymentProgressing)
	if want := fmt.Sprintf("ReplicaSet %q has timed out progressing.", cur.Name); c.Message != want {
		t.Errorf("message %q, want %q", c.Message, want)
	}

	// Within the deadline, nothing changes and the rollout is looked at
	// again when the deadline passes.
	d.Status.Conditions[1].LastUpdateTime = metav1.NewTime(testNow.Add(-10 * time.Second))
	f = newFixture(t, d, old, cur)
	f.sync()
	if got := f.progressing(); got != "True/ReplicaSetUpdated" {
		t.Errorf("Progressing %s within the deadline", got)
	}
	if after := f.c.requeueStuckDeployment(d, d.Status); after != 20*time.Second {
		t.Errorf("requeued after %v, want 20s", after)
	}
}

func TestHashCollisionBumpsCollisionCount(t *testing.T) {
	d := newDeployment(1, "v2")
	// A foreign replica set squats the name of the new one.
	squatter := rsOf(d, "v1", 1, 1, 1, time.Hour)
	tmpl := d.Spec.Template
	squatter.Name = "web-" + ComputeHash(&tmpl, nil)
	squatter.OwnerReferences = nil
	squatter.Labels = map[string]string{"other": "x"}
	f := newFixture(t, d, squatter)
	if err := f.c.sync(context.Background(), "ns/web"); err == nil {
		t.Fatal("sync succeeded over a name collision")
	}
	if cc := f.deployment().Status.CollisionCount; cc == nil || *cc != 1 {
		t.Fatalf("collisionCount %v, want 1", cc)
	}
	if ComputeHash(&tmpl, new(int32(1))) == ComputeHash(&tmpl, nil) {
		t.Error("the collision count does not change the hash")
	}
}

func TestComputeHashIsStableAndIgnoresNothing(t *testing.T) {
	a, b := template("v1"), template("v1")
	if ComputeHash(&a, nil) != ComputeHash(&b, nil) {
		t.Error("equal templates hash differently")
	}
	b.Spec.Containers[0].Image = "v2"
	if ComputeHash(&a, nil) == ComputeHash(&b, nil) {
		t.Error("different templates hash alike")
	}
	if h := ComputeHash(&a, nil); len(h) == 0 || len(h) > 10 || strings.ContainsAny(h, "aeiou013") {
		t.Errorf("hash %q is not a SafeEncodeString of a uint32", h)
	}
}

func TestSetNewReplicaSetAnnotationsRevisionHistory(t *testing.T) {
	d := newDeployment(1, "v1")
	for _, tc := range []struct {
		have, history, newRev string
		wantRev, wantHistory  string
	}{
		{have: "", newRev: "1", wantRev: "1"},
		{have: "1", newRev: "3", wantRev: "3", wantHistory: "1"},
		{have: "3", history: "1", newRev: "5", wantRev: "5", wantHistory: "1,3"},
		{have: "5", history: "1,3", newRev: "4", wantRev: "5", wantHistory: "1,3"}, // never lowered
	} {
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if tc.have != "" {
			rs.Annotations[RevisionAnnotation] = tc.have
		}
		if tc.history != "" {
			rs.Annotations[RevisionHistoryAnnotation] = tc.history
		}
		setNewReplicaSetAnnotations(d, rs, tc.newRev, true)
		if rs.Annotations[RevisionAnnotation] != tc.wantRev || rs.Annotations[RevisionHistoryAnnotation] != tc.wantHistory {
			t.Errorf("%+v: revision %q history %q", tc, rs.Annotations[RevisionAnnotation], rs.Annotations[RevisionHistoryAnnotation])
		}
	}
}

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		surge, unavailable intstr.IntOrString
		desired            int32
		wantS, wantU       int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2},
		{intstr.FromString("25%"), intstr.FromString("25%"), 1, 1, 0},
		{intstr.FromInt32(0), intstr.FromInt32(0), 3, 0, 1},
		{intstr.FromInt32(2), intstr.FromString("50%"), 5, 2, 2},
	} {
		s, u, err := ResolveFenceposts(&tc.surge, &tc.unavailable, tc.desired)
		if err != nil || s != tc.wantS || u != tc.wantU {
			t.Errorf("%v/%v of %d: %d/%d %v, want %d/%d", tc.surge.String(), tc.unavailable.String(), tc.desired, s, u, err, tc.wantS, tc.wantU)
		}
	}
}

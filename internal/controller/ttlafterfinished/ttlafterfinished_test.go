package ttlafterfinished

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func finishedJob(ttl *int32, finishedAgo time.Duration, cond batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", UID: "uid-j"},
		Spec:       batchv1.JobSpec{TTLSecondsAfterFinished: ttl},
	}
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-finishedAgo))}}
	}
	return j
}

func TestProcessJob(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cached      *batchv1.Job
		fresh       *batchv1.Job // in the API server; cached if nil
		wantDelete  bool
		wantRequeue time.Duration // 0: none
	}{
		{name: "ttl 0, complete", cached: finishedJob(new(int32(0)), 0, batchv1.JobComplete), wantDelete: true},
		{name: "ttl expired, failed", cached: finishedJob(new(int32(30)), time.Minute, batchv1.JobFailed), wantDelete: true},
		{name: "ttl ahead", cached: finishedJob(new(int32(100)), 10*time.Second, batchv1.JobComplete), wantRequeue: 90 * time.Second},
		{name: "running", cached: finishedJob(new(int32(0)), 0, "")},
		{name: "no ttl", cached: finishedJob(nil, time.Hour, batchv1.JobComplete)},
		{name: "ttl raised since cached", cached: finishedJob(new(int32(0)), 10*time.Second, batchv1.JobComplete),
			fresh: finishedJob(new(int32(60)), 10*time.Second, batchv1.JobComplete), wantRequeue: 50 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh := tc.fresh
			if fresh == nil {
				fresh = tc.cached
			}
			client := fake.NewClientset(fresh)
			clk := clocktesting.NewFakeClock(now)
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := New(client, factory, clk)
			if err != nil {
				t.Fatal(err)
			}
			if err := factory.Batch().V1().Jobs().Informer().GetStore().Add(tc.cached); err != nil {
				t.Fatal(err)
			}
			if err := c.processJob(context.Background(), "ns/j"); err != nil {
				t.Fatal(err)
			}
			var deleted *k8stesting.DeleteActionImpl
			for _, a := range client.Actions() {
				if d, ok := a.(k8stesting.DeleteActionImpl); ok {
					deleted = &d
				}
			}
			if (deleted != nil) != tc.wantDelete {
				t.Fatalf("deleted: %v, want %v", deleted != nil, tc.wantDelete)
			}
			if deleted != nil {
				o := deleted.DeleteOptions
				if o.PropagationPolicy == nil || *o.PropagationPolicy != metav1.DeletePropagationForeground ||
					o.Preconditions == nil || o.Preconditions.UID == nil || *o.Preconditions.UID != "uid-j" {
					t.Errorf("delete options %+v", o)
				}
			}
			if tc.wantRequeue > 0 {
				clk.Step(tc.wantRequeue - time.Millisecond)
				if c.queue.Len() != 0 {
					t.Errorf("requeued before %v", tc.wantRequeue)
				}
				clk.Step(time.Millisecond)
				// The delaying queue's goroutine moves the item.
				err := wait.PollUntilContextTimeout(t.Context(), time.Millisecond, 5*time.Second, true,
					func(context.Context) (bool, error) { return c.queue.Len() == 1, nil })
				if err != nil {
					t.Errorf("not requeued after %v", tc.wantRequeue)
				}
			}
		})
	}
}

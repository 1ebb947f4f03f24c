package workloads_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/test/framework"
)

// benchReplicas is the size of the benchmarked Deployment.
const benchReplicas = 1000

// BenchmarkDeploymentRollout measures the ReplicaSet and Deployment
// controllers' throughput on a server without an agent, the benchmark
// playing the node (binding pods and reporting them Ready with 32
// concurrent workers): seconds from creating a 1,000-replica Deployment to
// 1,000 available replicas (create-s), and from an image change to the
// completed rolling update with the default 25% surge/unavailability
// (rollout-s). Run it once:
//
//	go test ./test/e2e/workloads/ -run '^$' -bench DeploymentRollout -benchtime=1x
func BenchmarkDeploymentRollout(b *testing.B) {
	s := startServer(b)
	cs := s.Clientset()
	var createTotal, rolloutTotal time.Duration
	for i := 0; b.Loop(); i++ {
		ns := newNamespace(b, cs, fmt.Sprintf("bench%d", i))
		startFakeNode(b, s, ns, 32)

		start := time.Now()
		d := createDeployment(b, cs, ns, deployment("web", benchReplicas, "example.com/web:v1"))
		waitRollout(b, s, ns, "created", 1)
		created := time.Since(start)

		start = time.Now()
		patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"example.com/web:v2"}]}}}}`)
		if _, err := cs.AppsV1().Deployments(ns).Patch(ctxFor(b), d.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		waitRollout(b, s, ns, "rolled to v2", 2)
		rolled := time.Since(start)
		b.Logf("%d replicas: create→available %.2fs, image rollout %.2fs", benchReplicas, created.Seconds(), rolled.Seconds())
		createTotal += created
		rolloutTotal += rolled
	}
	b.ReportMetric(createTotal.Seconds()/float64(b.N), "create-s")
	b.ReportMetric(rolloutTotal.Seconds()/float64(b.N), "rollout-s")
}

// waitRollout waits for the Deployment's revision to be complete, all of
// its replicas available and no old ones left.
func waitRollout(b *testing.B, s *framework.Server, ns, what string, revision int) {
	b.Helper()
	var last *appsv1.Deployment
	start, updated := time.Now(), false
	err := framework.WaitFor(5*time.Minute, func() (bool, error) {
		d, err := s.Clientset().AppsV1().Deployments(ns).Get(ctxFor(b), "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = d
		if !updated && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == *d.Spec.Replicas && d.Annotations[revisionAnnotation] == fmt.Sprint(revision) {
			updated = true
			b.Logf("%s: %d updated replicas (pods created) after %.2fs", what, d.Status.UpdatedReplicas, time.Since(start).Seconds())
		}
		return complete(d) && d.Annotations[revisionAnnotation] == fmt.Sprint(revision), nil
	})
	if err != nil {
		b.Fatalf("%s: %v\n%s", what, err, describe(last))
	}
}

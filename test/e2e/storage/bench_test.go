package storage_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/havre/havre/test/framework"
)

// BenchmarkClaimPodStartup measures what a claim of the default class
// (WaitForFirstConsumer: scheduled, provisioned by the node's agent, bound,
// mounted) adds to a pod's startup: each iteration starts a pod without a
// volume, then a claim and a pod using it, each from its create call to
// Ready seen through a watch, one after the other.
//
//	go test ./test/e2e/storage -run '^$' -bench ClaimPodStartup -benchtime=20x
func BenchmarkClaimPodStartup(b *testing.B) {
	framework.RequireNodeAgent(b)
	s := startNode(b, framework.BuildImage(b, "test/images/web", webImage))
	cs := s.Clientset()
	ns := framework.NewNamespace(b, cs, "bench")
	var plain, claimed []time.Duration
	for i := range b.N {
		plain = append(plain, timePodReady(b, s, ns, fmt.Sprintf("plain-%d", i), nil))
		name := fmt.Sprintf("claimed-%d", i)
		claimed = append(claimed, timePodReady(b, s, ns, name, func(ctx context.Context) error {
			_, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: mustQuantity("16Mi")}},
				},
			}, metav1.CreateOptions{})
			return err
		}))
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[len(s)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(p50(plain), "plain-p50-ms")
	b.ReportMetric(p50(claimed), "claim-p50-ms")
	b.ReportMetric(p50(claimed)-p50(plain), "added-p50-ms")
}

// BenchmarkStatefulSetClaims measures 100 replicas of a StatefulSet with a
// claim each (parallel pod management) from the set's creation to all
// Ready.
//
//	go test ./test/e2e/storage -run '^$' -bench StatefulSetClaims -benchtime=1x
func BenchmarkStatefulSetClaims(b *testing.B) {
	framework.RequireNodeAgent(b)
	s := startNode(b, framework.BuildImage(b, "test/images/web", webImage))
	cs := s.Clientset()
	const replicas = 100
	var total time.Duration
	for i := range b.N {
		ns := framework.NewNamespace(b, cs, "bench")
		start := time.Now()
		apply(b, s, ns, fmt.Sprintf(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s%d}
spec:
  serviceName: s
  replicas: %d
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 8Mi}}
`, i, replicas, webImage))
		framework.Eventually(b, 5*time.Minute, func() (bool, error) {
			set, err := cs.AppsV1().StatefulSets(ns).Get(ctx(b), fmt.Sprintf("s%d", i), metav1.GetOptions{})
			return err == nil && set.Status.ReadyReplicas == replicas, nil
		}, "%d replicas ready", replicas)
		total += time.Since(start)
		b.StopTimer()
		if err := cs.CoreV1().Namespaces().Delete(ctx(b), ns, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-all-ready")
}

// timePodReady runs before (if any), creates a pod of the web image (with
// claim <name> mounted when before is given) and returns the time from
// before's start to the pod Ready, seen through a watch.
func timePodReady(b *testing.B, s *framework.Server, ns, name string, before func(context.Context) error) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := s.Clientset().CoreV1().Pods(ns)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "web", Image: webImage, ImagePullPolicy: corev1.PullNever}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}
	start := time.Now()
	if before != nil {
		if err := before(ctx); err != nil {
			b.Fatal(err)
		}
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatalf("watch of %s ended", name)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return time.Since(start)
				}
			}
		case <-ctx.Done():
			b.Fatalf("pod %s not ready: %v", name, ctx.Err())
		}
	}
}

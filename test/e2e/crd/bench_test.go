package crd_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/havre/havre/test/framework"
)

// Benchmarks of the real binary. Run them without the tests:
//
//	go test ./test/e2e/crd -run '^$' -bench . -benchtime 3s

const benchWorkers = 16

// benchCRD returns a namespaced definition of plural p in example.bench.
func benchCRD(p string) *apiextensionsv1.CustomResourceDefinition {
	kind := strings.ToUpper(p[:1]) + p[1:]
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: p + ".example.bench"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.bench", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: p, Kind: kind},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size": {Type: "string"}, "replicas": {Type: "integer", Default: &apiextensionsv1.JSON{Raw: []byte("1")}}}},
					},
				}},
			}},
		},
	}
}

// establish creates a definition and waits until its resource is served.
func establish(b testing.TB, s *framework.Server, client apiextensionsclient.Interface, crd *apiextensionsv1.CustomResourceDefinition) {
	if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: "v1", Resource: crd.Spec.Names.Plural}
	err := wait.PollUntilContextTimeout(context.Background(), 2*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		_, err := s.Dynamic().Resource(gvr).Namespace("default").List(c, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	if err != nil {
		b.Fatalf("%s not served: %v", crd.Name, err)
	}
}

// BenchmarkCRDEstablished: a definition created → Established and its
// resource answering a list.
func BenchmarkCRDEstablished(b *testing.B) {
	s := framework.StartServer(b, framework.WithoutWorkloadControllers())
	client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		establish(b, s, client, benchCRD(fmt.Sprintf("things%d", i)))
	}
}

// BenchmarkCRDUsableByKubectl: a definition created → a fresh kubectl
// (its own discovery, as after `kubectl apply -f crd.yaml`) lists its
// kind; kubectl is retried until it succeeds, so the figure includes
// kubectl's own start-up (reported alone as kubectl-ms/op).
func BenchmarkCRDUsableByKubectl(b *testing.B) {
	s := framework.StartServer(b, framework.WithoutWorkloadControllers())
	client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	var kubectl time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		crd := benchCRD(fmt.Sprintf("gadgets%d", i))
		if _, err := client.ApiextensionsV1().CustomResourceDefinitions().Create(context.Background(), crd, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			start := time.Now()
			_, _, err := s.Kubectl("get", crd.Spec.Names.Plural, "-n", "default")
			if err == nil {
				kubectl += time.Since(start)
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("kubectl get %s: %v", crd.Spec.Names.Plural, err)
			}
		}
	}
	b.ReportMetric(float64(kubectl.Milliseconds())/float64(b.N), "kubectl-ms/op")
}

// BenchmarkCreateGet compares create+get of a custom resource with a
// ConfigMap's, 16 client-go workers (dynamic client, JSON, for the custom
// resource; typed clientset for ConfigMaps), in the same run.
func BenchmarkCreateGet(b *testing.B) {
	s := framework.StartServer(b, framework.WithoutWorkloadControllers())
	client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	establish(b, s, client, benchCRD("widgets"))
	cs := s.Clientset()
	dyn := s.Dynamic().Resource(schema.GroupVersionResource{Group: "example.bench", Version: "v1", Resource: "widgets"}).Namespace("default")
	run := func(b *testing.B, op func(name string) error) {
		var n atomic.Int64
		b.SetParallelism(int(math.Ceil(float64(benchWorkers) / float64(runtime.GOMAXPROCS(0)))))
		defer saveCPUProfile(b, s)()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(fmt.Sprintf("o-%d", n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "create+get/s")
	}
	var round atomic.Int64
	b.Run("ConfigMap", func(b *testing.B) {
		p := fmt.Sprintf("cm%d-", round.Add(1))
		run(b, func(name string) error {
			if _, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: p + name}, Data: map[string]string{"size": "small"}}, metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err := cs.CoreV1().ConfigMaps("default").Get(context.Background(), p+name, metav1.GetOptions{})
			return err
		})
		_ = cs.CoreV1().ConfigMaps("default").DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
	})
	b.Run("CustomResource", func(b *testing.B) {
		p := fmt.Sprintf("cr%d-", round.Add(1))
		run(b, func(name string) error {
			name = p + name
			if _, err := dyn.Create(context.Background(), benchObject("Widgets", name), metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err := dyn.Get(context.Background(), name, metav1.GetOptions{})
			return err
		})
		_ = dyn.DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
	})
}

// BenchmarkRSS100CRDs reports the server's RSS growth after 100
// definitions are established and one object of each is created.
func BenchmarkRSS100CRDs(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := framework.StartServer(b, framework.WithoutWorkloadControllers())
		client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
		// RSS is read after the server idled long enough for memtrim to
		// return freed heap (30 s intervals), as BenchmarkIdleRSS of
		// test/e2e/api does: the figures are then what the server keeps.
		idle := 65 * time.Second
		if v := os.Getenv("HAVRE_BENCH_IDLE"); v != "" {
			if d, err := time.ParseDuration(v); err == nil {
				idle = d
			}
		}
		time.Sleep(idle)
		before, err := framework.ProcessRSS(s.PID())
		if err != nil {
			b.Fatal(err)
		}
		saveHeapProfile(s, ".before")
		for j := 0; j < 100; j++ {
			crd := benchCRD(fmt.Sprintf("kinds%d", j))
			establish(b, s, client, crd)
			gvr := schema.GroupVersionResource{Group: "example.bench", Version: "v1", Resource: crd.Spec.Names.Plural}
			obj := benchObject(crd.Spec.Names.Kind, "one")
			if _, err := s.Dynamic().Resource(gvr).Namespace("default").Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(idle)
		after, err := framework.ProcessRSS(s.PID())
		if err != nil {
			b.Fatal(err)
		}
		saveHeapProfile(s, "")
		b.ReportMetric(float64(after-before)/(1<<20), "MiB-growth")
		b.ReportMetric(float64(after)/(1<<20), "MiB-RSS")
	}
}

// saveHeapProfile writes the server's heap profile to
// $HAVRE_BENCH_HEAP_PROFILE+suffix when that is set (compare the two with
// `go tool pprof -base P.before P`).
func saveHeapProfile(s *framework.Server, suffix string) {
	path := os.Getenv("HAVRE_BENCH_HEAP_PROFILE")
	if path == "" {
		return
	}
	resp, err := s.HTTPClient().Get(s.URL("/debug/pprof/heap"))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path+suffix, data, 0o644)
}

// saveCPUProfile profiles the server for the first 10 s of a benchmark
// when $HAVRE_BENCH_CPU_PROFILE names a directory (one file per benchmark;
// run with -benchtime 15s or more); the returned function waits for it.
func saveCPUProfile(b *testing.B, s *framework.Server) func() {
	dir := os.Getenv("HAVRE_BENCH_CPU_PROFILE")
	if dir == "" || b.N < 100 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := s.HTTPClient().Get(s.URL("/debug/pprof/profile?seconds=10"))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_")+".pprof"), data, 0o644)
	}()
	return func() { <-done }
}

func benchObject(kind, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.bench/v1", "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": map[string]any{"size": "small"},
	}}
}

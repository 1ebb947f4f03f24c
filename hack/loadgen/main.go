// Command loadgen drives a Havre (or any Kubernetes) API server with
// concurrent client-go requests, for profiling and quick comparisons.
//
//	go run ./hack/loadgen -kubeconfig /var/lib/havre/admin.kubeconfig -op get -workers 16 -duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "/var/lib/havre/admin.kubeconfig", "kubeconfig of the server")
	op := flag.String("op", "get", "create, get or update")
	workers := flag.Int("workers", 16, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "how long to run (bounded)")
	flag.Parse()
	if *duration > 5*time.Minute {
		log.Fatal("-duration is capped at 5m")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	api := cs.CoreV1().ConfigMaps("default")
	seed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "loadgen"}, Data: map[string]string{"k": "v"}}
	if _, err := api.Create(ctx, seed, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		log.Fatal(err)
	}

	var n atomic.Int64
	var seq atomic.Int64
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var err error
				switch *op {
				case "create":
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lg-%d-%d", time.Now().UnixNano(), seq.Add(1))}, Data: map[string]string{"k": "v"}}
					_, err = api.Create(ctx, cm, metav1.CreateOptions{})
				case "update":
					var cm *corev1.ConfigMap
					if cm, err = api.Get(ctx, "loadgen", metav1.GetOptions{}); err == nil {
						cm.Data["k"] = fmt.Sprint(seq.Add(1))
						_, err = api.Update(ctx, cm, metav1.UpdateOptions{})
						if apierrors.IsConflict(err) {
							err = nil
						}
					}
				default:
					_, err = api.Get(ctx, "loadgen", metav1.GetOptions{})
				}
				if err != nil {
					log.Fatal(err)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%s: %d requests in %s = %.0f/s with %d workers\n", *op, n.Load(), *duration, float64(n.Load())/duration.Seconds(), *workers)
}

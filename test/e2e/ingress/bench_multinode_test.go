package ingress_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// BenchmarkIngressChangeServedEveryNode measures how long a new Ingress
// takes to be served by the proxy of every node of a cluster of three
// (n0: the server's agent; n1, n2: `havre agent`, each in its own network
// namespace, with the backend pod on one of them): from its create
// returning to the first 200 for its host from each node's proxy, each
// node polled every millisecond from the test process over the underlay.
// An iteration's figure is its slowest node's; reports p50, p99 and max,
// and the p50 of the first node to serve.
//
//	go test ./test/e2e/ingress -run '^$' -bench IngressChangeServedEveryNode -benchtime 20x
func BenchmarkIngressChangeServedEveryNode(b *testing.B) {
	framework.RequireNodeAgent(b)
	c := framework.StartCluster(b, 3)
	c.ImportImage(b, framework.BuildImage(b, "test/images/web", "havre.local/e2e-web:bench"))
	c.Server.MustKubectlStdin(b, backendManifest, "apply", "-f", "-")
	c.Server.MustKubectl(b, "rollout", "status", "deployment/backend", "--timeout=180s")
	cs := c.Server.Clientset()
	clients := make([]*httpClient, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = &httpClient{addr: net.JoinHostPort(n.IP, strconv.Itoa(n.IngressHTTPPort())), c: benchClient()}
	}
	// Every node serves an Ingress before the measure (its proxy up, the
	// backend reachable from it).
	if _, err := cs.NetworkingV1().Ingresses("default").Create(context.Background(), benchIngress("warm", "warm.test"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i, hc := range clients {
		framework.Eventually(b, time.Minute, func() (bool, error) {
			return benchDoHost(hc.c, hc.addr, "warm.test") == nil, nil
		}, "node %s does not serve warm.test", c.Nodes[i].Name)
	}

	var every, first []time.Duration
	b.ResetTimer()
	for i := range b.N {
		host := fmt.Sprintf("every-%d.test", i)
		start := time.Now()
		if _, err := cs.NetworkingV1().Ingresses("default").Create(context.Background(), benchIngress(fmt.Sprintf("every-%d", i), host), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		took := make([]time.Duration, len(clients))
		var wg sync.WaitGroup
		for k, hc := range clients {
			wg.Go(func() {
				for n := 0; n < 30_000; n++ {
					if benchDoHost(hc.c, hc.addr, host) == nil {
						took[k] = time.Since(start)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Wait()
		for k, d := range took {
			if d == 0 {
				b.Fatalf("%s not served by node %s after 30,000 polls", host, c.Nodes[k].Name)
			}
		}
		every = append(every, slices.Max(took))
		first = append(first, slices.Min(took))
	}
	b.StopTimer()
	slices.Sort(every)
	slices.Sort(first)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(every[len(every)/2]), "p50-ms")
	b.ReportMetric(ms(every[len(every)*99/100]), "p99-ms")
	b.ReportMetric(ms(every[len(every)-1]), "max-ms")
	b.ReportMetric(ms(first[len(first)/2]), "p50-first-node-ms")
}

// httpClient is a keep-alive client for one node's proxy.
type httpClient struct {
	addr string
	c    *http.Client
}

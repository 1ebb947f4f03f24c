package ingress_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// BenchmarkProxyVsNginx measures requests per second through the node's
// ingress proxy and through Debian's nginx configured as a reverse proxy
// to the same backend pod, side by side in one run: 64 keep-alive
// connections, alternating rounds of 3 s (three each), and then the p99
// latency the proxy adds at half of its throughput, against calling the
// pod directly. The load generator shares the machine's cores with both
// proxies, equally.
//
// nginx runs twice, with one worker and with Debian's default
// worker_processes auto (a worker per core, as Havre's proxy may use
// every core: GOMAXPROCS is the server process's default); the reference
// (nginx-req/s, havre/nginx) is the faster of the two in the run. Havre's
// proxy shares its process with the API server and controllers, as it
// does on a node that runs them.
//
// HAVRE_BENCH_CPUPROFILE=file writes the server process's CPU profile
// of the second Havre round (read it with go tool pprof -top).
//
//	go test ./test/e2e/ingress -run '^$' -bench ProxyVsNginx -benchtime 1x
func BenchmarkProxyVsNginx(b *testing.B) {
	framework.RequireNodeAgent(b)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, err := os.Stat(nginx); err != nil {
			b.Skip("Debian's nginx is the reference: apt-get install nginx (hack/install-deps.sh does)")
		}
	}
	s := benchBackend(b)
	if _, err := s.Clientset().NetworkingV1().Ingresses("default").Create(context.Background(), benchIngress("bench", "bench.test"), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	pods, err := s.Clientset().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=backend"})
	if err != nil || len(pods.Items) != 1 {
		b.Fatalf("backend pods: %v", err)
	}
	direct := net.JoinHostPort(pods.Items[0].Status.PodIP, "8080")
	havre := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.IngressHTTPPort()))
	framework.Eventually(b, 30*time.Second, func() (bool, error) {
		return benchGet(havre) == nil, nil
	}, "the Ingress is served")
	ngx1, pgid1 := startNginx(b, nginx, direct, "1")
	ngxAuto, pgidAuto := startNginx(b, nginx, direct, "auto")

	// Each round also takes the CPU time its proxy's processes used per
	// request: on a loaded machine a steadier figure than the rate. For
	// Havre, the whole server process (its API server and controllers
	// too: an upper bound).
	var havreRates, nginx1Rates, nginxAutoRates, havreCPU, nginx1CPU, nginxAutoCPU []float64
	round := func(addr string, cpu func() time.Duration, rates, cpus *[]float64) {
		c0 := cpu()
		r := benchRate(b, addr, 64, 3*time.Second)
		*rates = append(*rates, r)
		*cpus = append(*cpus, float64((cpu()-c0).Microseconds())/(r*3))
	}
	havreProc := func() time.Duration { return processCPU(b, func(pid, _ int) bool { return pid == s.PID() }) }
	group := func(pgid int) func() time.Duration {
		return func() time.Duration { return processCPU(b, func(_, pg int) bool { return pg == pgid }) }
	}
	// The server process's own CPU use without requests (API server,
	// controllers, agent), to read havre-cpu-µs/req against.
	idle0 := havreProc()
	idleStart := time.Now()
	time.Sleep(3 * time.Second) // a measurement interval, not a synchronisation
	b.ReportMetric(float64((havreProc()-idle0).Milliseconds())/time.Since(idleStart).Seconds(), "havre-idle-cpu-ms/s")
	for i := range 3 {
		var prof chan error
		if path := os.Getenv("HAVRE_BENCH_CPUPROFILE"); path != "" && i == 1 {
			prof = make(chan error, 1)
			go func() { prof <- serverProfile(s, path, 3) }()
		}
		round(havre, havreProc, &havreRates, &havreCPU)
		if prof != nil {
			if err := <-prof; err != nil {
				b.Errorf("CPU profile: %v", err)
			}
		}
		round(ngx1, group(pgid1), &nginx1Rates, &nginx1CPU)
		round(ngxAuto, group(pgidAuto), &nginxAutoRates, &nginxAutoCPU)
	}
	h, n1, nAuto := median(havreRates), median(nginx1Rates), median(nginxAutoRates)
	n := max(n1, nAuto)
	b.ReportMetric(h, "havre-req/s")
	b.ReportMetric(n1, "nginx-1worker-req/s")
	b.ReportMetric(nAuto, "nginx-auto-req/s")
	b.ReportMetric(n, "nginx-req/s")
	b.ReportMetric(h/n, "havre/nginx")
	b.ReportMetric(median(havreCPU), "havre-cpu-µs/req")
	b.ReportMetric(median(nginx1CPU), "nginx-1worker-cpu-µs/req")
	b.ReportMetric(median(nginxAutoCPU), "nginx-auto-cpu-µs/req")

	rate := h / 2
	viaProxy := benchLatency(b, havre, rate, 3*time.Second)
	viaPod := benchLatency(b, direct, rate, 3*time.Second)
	b.ReportMetric(float64(viaProxy.Microseconds()), "p99-proxy-µs")
	b.ReportMetric(float64(viaPod.Microseconds()), "p99-direct-µs")
	b.ReportMetric(float64((viaProxy - viaPod).Microseconds()), "p99-added-µs")
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// processCPU sums the user and system CPU time of the processes chosen
// by their pid and process group.
func processCPU(b *testing.B, choose func(pid, pgid int) bool) time.Duration {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	found := false
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp session tty tpgid flags minflt
		// cminflt majflt cmajflt utime stime ...; comm may hold spaces.
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(data[i+1:]))
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Dir(f), "/proc/"), "/"))
		if len(fields) < 13 {
			continue
		}
		pgid, _ := strconv.Atoi(fields[2])
		if !choose(pid, pgid) {
			continue
		}
		found = true
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += ut + st
	}
	if !found {
		b.Fatal("no process to take the CPU time of")
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// serverProfile writes the server process's CPU profile over the next
// seconds to path.
func serverProfile(s *framework.Server, path string, seconds int) error {
	data, err := s.Clientset().CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(seconds)).Timeout(time.Duration(seconds+30) * time.Second).DoRaw(context.Background())
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// startNginx runs Debian's nginx as a reverse proxy to backend with
// keep-alive connections both ways, on a free loopback port, as long as
// the benchmark runs; workers is its worker_processes. It returns the
// address and the process group of the master and its workers.
func startNginx(b *testing.B, bin, backend, workers string) (string, int) {
	port, err := framework.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	conf := fmt.Sprintf(`worker_processes %[4]s;
pid %[1]s/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream backend { server %[2]s; keepalive 64; }
  server {
    listen 127.0.0.1:%[3]d;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, dir, backend, port, workers)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", "stderr", "-c", path, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	// Its own process group: the cleanup kills the master and its worker
	// together (a killed master leaves its worker running).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	framework.Eventually(b, 10*time.Second, func() (bool, error) { return benchGet(addr) == nil, nil }, "nginx answers")
	return addr, cmd.Process.Pid
}

func benchGet(addr string) error { return benchDoHost(benchClient(), addr, "bench.test") }

// benchRate runs conns keep-alive connections, each sending requests one
// after the other, for d (and at most 10 million requests), and returns
// the successful requests per second. Any failure fails the benchmark.
func benchRate(b *testing.B, addr string, conns int, d time.Duration) float64 {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := benchClient()
			for time.Now().Before(deadline) && ok.Load() < 10_000_000 {
				if err := benchDo(c, addr); err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests to %s failed", n, addr)
	}
	return float64(ok.Load()) / d.Seconds()
}

// benchLatency sends requests at rate per second (open loop, spread over
// 64 keep-alive connections) for d and returns the 99th percentile.
func benchLatency(b *testing.B, addr string, rate float64, d time.Duration) time.Duration {
	const conns = 64
	interval := time.Duration(float64(time.Second) * conns / rate)
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := benchClient()
			next := time.Now().Add(interval * time.Duration(i) / conns)
			var mine []time.Duration
			for n := 0; n < 1_000_000; n++ {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				}
				if time.Now().After(deadline) {
					break
				}
				start := time.Now()
				if err := benchDo(c, addr); err != nil {
					failed.Add(1)
				} else {
					mine = append(mine, time.Since(start))
				}
				next = next.Add(interval)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests to %s failed", n, addr)
	}
	if len(lat) == 0 {
		b.Fatal("no request completed")
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

func benchClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}}
}

func benchDo(c *http.Client, addr string) error { return benchDoHost(c, addr, "bench.test") }

// BenchmarkIngressChangeServed measures how long a new Ingress takes to be
// served by the node's proxy: from its create returning to the first 200
// for its host (polled every millisecond). Reports p50 and p99.
//
//	go test ./test/e2e/ingress -run '^$' -bench IngressChangeServed -benchtime 50x
func BenchmarkIngressChangeServed(b *testing.B) {
	s := benchBackend(b)
	cs := s.Clientset()
	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		host := fmt.Sprintf("change-%d.test", i)
		ing := benchIngress(fmt.Sprintf("change-%d", i), host)
		start := time.Now()
		if _, err := cs.NetworkingV1().Ingresses("default").Create(context.Background(), ing, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.IngressHTTPPort()))
		c := benchClient()
		for n := 0; ; n++ {
			if benchDoHost(c, addr, host) == nil {
				break
			}
			if n > 30_000 {
				b.Fatalf("%s not served after 30s", host)
			}
			time.Sleep(time.Millisecond)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Milliseconds()), "p99-ms")
}

// BenchmarkProxyRSS1000Hosts measures the growth of the server process's
// resident memory (API server, controllers and the node's proxy: an upper
// bound of the proxy's share) when 1,000 Ingresses, each with a host of its
// own, are served.
//
//	go test ./test/e2e/ingress -run '^$' -bench ProxyRSS1000Hosts -benchtime 1x
func BenchmarkProxyRSS1000Hosts(b *testing.B) {
	s := benchBackend(b)
	cs := s.Clientset()
	before, err := framework.ProcessRSS(s.PID())
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	for i := range n {
		if _, err := cs.NetworkingV1().Ingresses("default").Create(context.Background(), benchIngress(fmt.Sprintf("h%d", i), fmt.Sprintf("h%d.test", i)), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.IngressHTTPPort()))
	framework.Eventually(b, 60*time.Second, func() (bool, error) {
		return benchDoHost(benchClient(), addr, fmt.Sprintf("h%d.test", n-1)) == nil, nil
	}, "the last Ingress served")
	after, err := framework.ProcessRSS(s.PID())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(after)/(1<<20), "rss-MiB")
}

// benchBackend starts a node with one backend pod behind Service
// default/backend.
func benchBackend(b *testing.B) *framework.Server {
	framework.RequireNodeAgent(b)
	s := framework.StartServer(b, framework.WithAgent(), framework.WithArgs("--node-name", "bench", "--ingress-access-log=false"))
	s.WaitNodeReady(b, "bench", 60*time.Second)
	s.ImportImage(b, framework.BuildImage(b, "test/images/web", "havre.local/e2e-web:bench"))
	s.MustKubectlStdin(b, backendManifest, "apply", "-f", "-")
	s.MustKubectl(b, "rollout", "status", "deployment/backend", "--timeout=120s")
	return s
}

// backendManifest is the backend: one pod of the web image
// havre.local/e2e-web:bench behind Service default/backend.
const backendManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: backend}}
  template:
    metadata: {labels: {app: backend}}
    spec:
      containers:
        - name: web
          image: havre.local/e2e-web:bench
          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports: [{port: 80, targetPort: 8080}]
`

func benchIngress(name, host string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "backend", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

func benchDoHost(c *http.Client, addr, host string) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

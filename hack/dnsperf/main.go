// Command dnsperf measures the node DNS server (internal/network/dns) with
// Debian's dnsperf (/usr/bin/dnsperf, `apt-get install dnsperf`).
//
//	go run ./hack/dnsperf                  # both runs, 30 s each
//	go run ./hack/dnsperf -l 10 -run cluster
//
// It starts, in this process and on 127.0.0.1 only: the server over a fake
// clientset holding -services Services (nine in ten with a ClusterIP, one
// in ten headless with ten ready endpoints: 1,000 Services and 1,000 pods
// by default), and a fake upstream resolver that answers every
// *.example.com. name with an A record and anything else with NXDOMAIN.
// Then it runs, for -l seconds each:
//
//   - cluster: `dnsperf -s 127.0.0.1 -p PORT -d cluster.txt -l L`, the A
//     records of every Service (<svc>.<ns>.svc.cluster.local), shuffled;
//   - external: `dnsperf ... -d external.txt -l L`, 1,000 external names as
//     a pod's resolver first asks them with ndots:5
//     (host-N.example.com.ns-0.svc.cluster.local), which autopath answers
//     in one round trip (127.0.0.1 is a pod of ns-0; the host search
//     domain corp.internal is in the path), with the cache warmed first;
//   - search: the same lookups without autopath, as five queries each
//     (the four search candidates, NXDOMAIN, then the name), sent from
//     127.0.0.2, which is no pod; lookups/s is its QPS / 5.
//
// dnsperf keeps -q 100 queries in flight, so at full speed its latency is
// mostly its own queue (100 / QPS). Each run is therefore repeated for up
// to 10 s at the target's offered load (-Q 40000 for cluster names, -Q
// 25000 for external ones; -latency-qps) with dnsperf -v, whose
// per-query lines give latency percentiles (dnsperf 2.10 reports only the
// average). The report names the load average before and after and the
// CPU the server used.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	clusterdns "github.com/havre/havre/internal/network/dns"
)

func main() {
	services := flag.Int("services", 1000, "Services to load")
	seconds := flag.Int("l", 30, "seconds per dnsperf run (at most 120)")
	run := flag.String("run", "cluster,external,search", "runs: cluster, external, search")
	clients := flag.Int("c", 1, "dnsperf -c: clients (sockets)")
	threads := flag.Int("T", 1, "dnsperf -T: threads")
	latency := flag.Bool("latency", true, "also run dnsperf -v for latency percentiles")
	latencyQPS := flag.String("latency-qps", "cluster=40000,external=25000,search=0", "dnsperf -Q (offered load) of the latency runs, per run; 0: unlimited")
	cpuprofile := flag.String("cpuprofile", "", "write the server's CPU profile during the runs to this file")
	flag.Parse()
	if *seconds < 1 || *seconds > 120 {
		log.Fatal("-l must be 1..120 seconds")
	}
	if _, err := exec.LookPath("dnsperf"); err != nil {
		log.Fatal("dnsperf not found: apt-get install dnsperf")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	up, err := startUpstream()
	if err != nil {
		log.Fatal(err)
	}
	defer up.Shutdown()

	objs, clusterNames := fixture(*services)
	cs := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(cs, 0)
	srv, err := clusterdns.New(clusterdns.Config{
		Listen:    []string{"127.0.0.1:0"},
		Upstreams: []string{up.PacketConn.LocalAddr().String()},
		Search:    []string{"corp.internal"},
		NamespaceOf: func(ip netip.Addr) (string, bool) {
			return "ns-0", ip == netip.MustParseAddr("127.0.0.1")
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, factory)
	if err != nil {
		log.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go func() {
		if err := srv.Run(ctx); err != nil {
			log.Fatal(err)
		}
	}()
	addr := srv.Addrs()[0].String()
	_, portStr, _ := net.SplitHostPort(addr)
	waitReady(addr)

	dir, err := os.MkdirTemp("", "dnsperf")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var external []string
	for i := range 1000 {
		external = append(external, fmt.Sprintf("host-%d.example.com.ns-0.svc.cluster.local.", i))
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("server %s: %d Services, %d cluster names; %d CPUs; %s\n", addr, *services, len(clusterNames), runtime.NumCPU(), runtime.Version())
	for _, r := range strings.Split(*run, ",") {
		var qnames []string
		switch r {
		case "cluster":
			qnames = clusterNames
		case "external":
			qnames = external
			for _, n := range external { // warm the cache
				query(addr, n)
			}
			if m := query(addr, external[0]); m == nil || len(m.Answer) != 2 {
				log.Fatalf("autopath did not answer %s with CNAME + A: %v", external[0], m)
			}
		case "search":
			// The same lookups without autopath: each is the five queries of
			// a pod's resolver walking its search path.
			for i := range 1000 {
				base := fmt.Sprintf("host-%d.example.com.", i)
				for _, suffix := range []string{"ns-0.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "corp.internal.", ""} {
					qnames = append(qnames, base+suffix)
				}
			}
			for _, n := range qnames {
				query(addr, n)
			}
		default:
			log.Fatalf("unknown run %q", r)
		}
		file := filepath.Join(dir, r+".txt")
		writeQueries(file, qnames)
		args := []string{"-s", "127.0.0.1", "-p", portStr, "-d", file, "-l", strconv.Itoa(*seconds)}
		if r == "search" {
			args = append(args, "-a", "127.0.0.2") // not a pod: no autopath
		}
		if *clients != 1 {
			args = append(args, "-c", strconv.Itoa(*clients))
		}
		if *threads != 1 {
			args = append(args, "-T", strconv.Itoa(*threads))
		}
		fmt.Printf("\n== %s: dnsperf %s\n", r, strings.Join(args, " "))
		load0, cpu0, t0 := loadavg(), cpuSeconds(), time.Now()
		out, err := exec.Command("dnsperf", args...).CombinedOutput()
		if err != nil {
			log.Fatalf("dnsperf: %v\n%s", err, out)
		}
		wall := time.Since(t0).Seconds()
		cpu := cpuSeconds() - cpu0
		fmt.Print(pick(string(out), "Queries sent", "Queries completed", "Queries lost", "Response codes", "Run time", "Queries per second", "Average Latency", "Latency StdDev"))
		fmt.Printf("  server CPU: %.2f cores; load average before %s, after %s\n", cpu/wall, load0, loadavg())
		if r == "search" {
			if q := qpsOf(string(out)); q > 0 {
				fmt.Printf("  lookups per second: %.0f (QPS / 5)\n", q/5)
			}
		}
		if *latency {
			for _, q := range strings.Split(*latencyQPS, ",") {
				if name, v, ok := strings.Cut(q, "="); ok && name == r && v != "0" {
					args = append(args, "-Q", v)
				}
			}
			lat := latencyRun(portStr, file, min(*seconds, 10), args)
			fmt.Print(lat)
		}
	}
}

// fixture builds n Services in ten namespaces: one in ten headless with
// ten ready endpoints (with hostnames), the rest with a ClusterIP, and the
// A question of each.
func fixture(n int) ([]k8sruntime.Object, []string) {
	var objs []k8sruntime.Object
	var names []string
	pod := 0
	for i := range n {
		ns := fmt.Sprintf("ns-%d", i%10)
		name := fmt.Sprintf("svc-%d", i)
		svc := &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}}},
		}
		if i%10 == 9 {
			svc.Spec.ClusterIP = v1.ClusterIPNone
			es := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
				AddressType: discoveryv1.AddressTypeIPv4,
			}
			for j := range 10 {
				ready, host := true, fmt.Sprintf("%s-%d", name, j)
				es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
					Addresses:  []string{fmt.Sprintf("10.42.%d.%d", pod/250, pod%250+2)},
					Conditions: discoveryv1.EndpointConditions{Ready: &ready},
					Hostname:   &host,
				})
				pod++
			}
			objs = append(objs, es)
		} else {
			ip := fmt.Sprintf("10.43.%d.%d", i/250, i%250+2)
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		}
		objs = append(objs, svc)
		names = append(names, name+"."+ns+".svc.cluster.local.")
	}
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return objs, names
}

// startUpstream serves *.example.com. A records and NXDOMAIN otherwise on
// 127.0.0.1.
func startUpstream() (*dns.Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	soa, _ := dns.NewRR(". 300 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 300")
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case strings.HasSuffix(strings.ToLower(q.Name), ".example.com.") && q.Qtype == dns.TypeA:
			rr, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		case strings.HasSuffix(strings.ToLower(q.Name), ".example.com."):
			m.Ns = []dns.RR{soa}
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	return srv, nil
}

func query(addr, name string) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	m, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, addr)
	if err != nil {
		return nil
	}
	return m
}

func waitReady(addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := query(addr, "dns-version.cluster.local."); m != nil && m.Rcode == dns.RcodeSuccess {
			return
		}
		if time.Now().After(deadline) {
			log.Fatal("the DNS server did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeQueries(file string, names []string) {
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s A\n", n)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// latencyRun repeats a run with dnsperf -v and reports latency percentiles
// from its per-query lines ("> NOERROR name A 0.000123").
func latencyRun(port, file string, seconds int, args []string) string {
	args = slices.Clone(args)
	for i, a := range args {
		if a == "-l" {
			args[i+1] = strconv.Itoa(seconds)
		}
	}
	args = append(args, "-v")
	// dnsperf writes to a file, read afterwards: parsing its lines while it
	// runs would take CPU from the server in this process.
	out, err := os.CreateTemp(filepath.Dir(file), "verbose")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command("dnsperf", args...)
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		log.Fatalf("dnsperf -v: %v", err)
	}
	if _, err := out.Seek(0, 0); err != nil {
		log.Fatal(err)
	}
	var lat []float64
	var qps string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v)
			}
		}
		if strings.Contains(line, "Queries per second") {
			qps = strings.TrimSpace(line)
		}
	}
	if len(lat) == 0 {
		return "  (no per-query latencies in dnsperf -v output)\n"
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] * 1000 }
	return fmt.Sprintf("  dnsperf %s for %ds (%s, %d queries): latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
		strings.Join(args, " "), seconds, qps, len(lat), pct(0.5), pct(0.9), pct(0.99), pct(0.999), lat[len(lat)-1]*1000)
}

// pick keeps dnsperf's summary lines that start with one of the prefixes.
func pick(out string, prefixes ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		for _, p := range prefixes {
			if strings.HasPrefix(t, p) {
				b.WriteString("  " + t + "\n")
				break
			}
		}
	}
	return b.String()
}

// qpsOf reads dnsperf's "Queries per second" figure.
func qpsOf(out string) float64 {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Queries per second:"); ok {
			q, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return q
		}
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// cpuSeconds is the CPU this process (the server and the fake upstream)
// has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

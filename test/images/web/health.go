package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Switches for probes and lifecycle hooks:
//
//	/health            200 "ok" while healthy, else 500 (see /sethealth and
//	                   -ready-after)
//	/sethealth?ok=B    makes /health (and the grpc health service) healthy
//	                   or not
//	/require-header?H=V&…  200 if the request has every header H with
//	                   value V, else 400
//	/append?path=P&line=L  appends line L to file P (for httpGet hooks)
//
// -ready-after D makes /health fail for D after the start; -grpc ADDR
// serves grpc.health.v1 (SERVING while healthy); -probe URL GETs URL and
// exits 0 if it answers 2xx, else 1 (for exec probes); -term-append
// FILE=LINE appends LINE to FILE on SIGTERM.
var (
	readyAfter = flag.Duration("ready-after", 0, "/health fails until this long after the start")
	grpcAddr   = flag.String("grpc", "", "address to serve grpc.health.v1 on (e.g. :9090)")
	probeURL   = flag.String("probe", "", "GET this URL and exit 0 if it answers 2xx, else 1")
	termAppend = flag.String("term-append", "", "FILE=LINE: append LINE to FILE on SIGTERM")

	started    = time.Now()
	unhealthy  atomic.Bool
	grpcHealth = health.NewServer()
)

func isHealthy() bool {
	return !unhealthy.Load() && time.Since(started) >= *readyAfter
}

// addHealthHandlers serves the switches (and the grpc health service, if
// asked for).
func addHealthHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if !isHealthy() {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/sethealth", func(w http.ResponseWriter, r *http.Request) {
		ok := r.URL.Query().Get("ok") != "false"
		unhealthy.Store(!ok)
		setGRPCHealth()
		fmt.Fprintf(w, "healthy: %v\n", ok)
	})
	mux.HandleFunc("/require-header", func(w http.ResponseWriter, r *http.Request) {
		var missing []string
		for name, values := range r.URL.Query() {
			if got := r.Header.Get(name); got != values[0] {
				missing = append(missing, fmt.Sprintf("%s=%q (got %q)", name, values[0], got))
			}
		}
		if len(missing) > 0 {
			http.Error(w, "missing headers: "+strings.Join(missing, ", "), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/append", func(w http.ResponseWriter, r *http.Request) {
		if err := appendLine(r.URL.Query().Get("path"), r.URL.Query().Get("line")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if *grpcAddr == "" {
		return
	}
	l, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, grpcHealth)
	setGRPCHealth()
	go func() {
		// Health follows -ready-after too.
		for !isHealthy() && !unhealthy.Load() {
			time.Sleep(100 * time.Millisecond)
		}
		setGRPCHealth()
	}()
	go func() { log.Fatal(srv.Serve(l)) }()
	fmt.Printf("serving grpc health on %s\n", *grpcAddr)
}

func setGRPCHealth() {
	st := healthpb.HealthCheckResponse_SERVING
	if !isHealthy() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	grpcHealth.SetServingStatus("", st)
}

// runProbe acts as an exec probe when -probe is given: it exits.
func runProbe() {
	if *probeURL == "" {
		return
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(*probeURL)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	if resp.StatusCode/100 != 2 {
		os.Exit(1)
	}
	os.Exit(0)
}

// appendOnTerm appends -term-append's line (on SIGTERM).
func appendOnTerm() {
	if *termAppend == "" {
		return
	}
	file, line, _ := strings.Cut(*termAppend, "=")
	if err := appendLine(file, line); err != nil {
		fmt.Println(err)
	}
}

func appendLine(file, line string) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, line)
	return f.Close()
}

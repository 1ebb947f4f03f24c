// Command web is the program of Havre's end-to-end test image: an HTTP
// server that shows what a container sees, plus switches to make it
// misbehave on purpose.
//
//	/            "web <hostname>"
//	/healthz     "ok"
//	/clientip    the client's address, as the server sees it
//	/env         the environment, sorted, one NAME=value a line
//	/file?path=P the content of file P
//	/exit?code=N exits with code N after answering
//	/alloc?mb=N  allocates and touches N MiB, and keeps it
//
// Flags run it differently: -exit N exits at once with code N (after
// -sleep), -append FILE=LINE appends a line to a file first (and exits 0
// when -exit is given), -term-delay D waits D after SIGTERM before exiting.
// health.go has the switches for probes and lifecycle hooks.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var hog [][]byte

func main() {
	runApplet()
	listen := flag.String("listen", ":8080", "address to serve on")
	exitCode := flag.Int("exit", -1, "exit at once with this code instead of serving")
	sleep := flag.Duration("sleep", 0, "sleep this long before anything else")
	appendLine := flag.String("append", "", "FILE=LINE: append LINE to FILE first")
	termDelay := flag.Duration("term-delay", 0, "how long to wait after SIGTERM before exiting")
	udpAddr := flag.String("udp", "", "also answer UDP datagrams on this address (e.g. :8080)")
	ports := flag.String("ports", "", "also answer HTTP and UDP on these ports (e.g. 80,81)")
	flag.Parse()
	runProbe()

	time.Sleep(*sleep)
	if *appendLine != "" {
		file, line, _ := strings.Cut(*appendLine, "=")
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintln(f, line)
		f.Close()
	}
	if *exitCode >= 0 {
		fmt.Printf("exiting with code %d\n", *exitCode)
		os.Exit(*exitCode)
	}

	if *udpAddr != "" {
		go serveUDP(*udpAddr)
	}
	servePorts(*ports)
	mux := http.NewServeMux()
	addLogHandler(mux)
	addHealthHandlers(mux)
	addProbeHandler(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintf(w, "web %s\n", h)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		fmt.Fprintln(w, strings.Join(env, "\n"))
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintf(w, "exiting with code %d\n", code)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			os.Exit(code)
		}()
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			hog = append(hog, b)
		}
		fmt.Fprintf(w, "holding %d MiB\n", len(hog))
	})
	srv := &http.Server{Addr: *listen, Handler: mux}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		appendOnTerm()
		fmt.Printf("terminating in %v\n", *termDelay)
		time.Sleep(*termDelay)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		os.Exit(0)
	}()
	fmt.Printf("serving on %s\n", *listen)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	select {}
}

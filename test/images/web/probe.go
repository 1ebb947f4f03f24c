package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Serving several ports, and probing others: what the NetworkPolicy tests
// need of every pod of their model.
//
//	-ports 80,81   also answer HTTP on these TCP ports and echo UDP datagrams
//	               on these UDP ports
//	/probe?to=IP:PORT/tcp,IP:PORT/udp&timeout=1s
//	               connects to every target at once and answers a JSON
//	               object: target → true when it answered
func servePorts(list string) {
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		addr := ":" + p
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				h, _ := os.Hostname()
				w.Write([]byte("web " + h + "\n"))
			})
			if err := http.ListenAndServe(addr, mux); err != nil {
				os.Stderr.WriteString("port " + addr + ": " + err.Error() + "\n")
			}
		}()
		go serveUDP(addr)
	}
}

func addProbeHandler(mux *http.ServeMux) {
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) {
		timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
		if err != nil || timeout <= 0 {
			timeout = time.Second
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		out := map[string]bool{}
		for _, t := range strings.Split(r.URL.Query().Get("to"), ",") {
			if t == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := probe(t, timeout)
				mu.Lock()
				out[t] = ok
				mu.Unlock()
			}()
		}
		wg.Wait()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// probe reports whether target (IP:PORT/tcp or IP:PORT/udp) answers: a TCP
// connection accepted, or a UDP datagram echoed.
func probe(target string, timeout time.Duration) bool {
	addr, proto, _ := strings.Cut(target, "/")
	switch proto {
	case "udp":
		conn, err := net.DialTimeout("udp", addr, timeout)
		if err != nil {
			return false
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err := conn.Write([]byte("probe")); err != nil {
			return false
		}
		buf := make([]byte, 512)
		_, err = conn.Read(buf)
		return err == nil
	default:
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
}

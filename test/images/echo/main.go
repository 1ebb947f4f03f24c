// Command echo is the backend of Havre's ingress end-to-end tests: one
// HTTP server speaking HTTP/1.1 and h2c on -listen, and a gRPC server
// (the standard health service) on -grpc.
//
//	/          "echo <hostname> <host> <path?query>" (the Host header the proxy sent)
//	/healthz   "ok"
//	/ws        WebSocket: every message echoed back
//	/upload    the number of bytes of the request body
//	/proto     the protocol the request came in (HTTP/1.1, HTTP/2.0)
//
// On SIGTERM it keeps serving -term-delay, then shuts down gracefully, as
// an application that drains well does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	listen := flag.String("listen", ":8080", "HTTP (HTTP/1.1 and h2c) address")
	grpcAddr := flag.String("grpc", ":9090", "gRPC address")
	termDelay := flag.Duration("term-delay", 2*time.Second, "how long to keep serving after SIGTERM")
	flag.Parse()
	host, _ := os.Hostname()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "echo %s %s %s\n", host, r.Host, r.URL.RequestURI())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, r.Proto) })
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, n)
	})
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: *listen, Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)

	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = gs.Serve(gl) }()

	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		<-sigs
		fmt.Printf("terminating in %v\n", *termDelay)
		time.Sleep(*termDelay)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		gs.GracefulStop()
		os.Exit(0)
	}()
	fmt.Printf("serving HTTP on %s, gRPC on %s\n", *listen, *grpcAddr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	select {}
}

// Command demo-api is the demo's API: a small JSON service that counts
// visits in PostgreSQL.
//
//	GET  /api/healthz  200 once the database answers
//	GET  /api/visits   {"visits": N, ...}
//	POST /api/visits   records a visit, then answers as GET
//
// DATABASE_URL (default postgres://postgres@db:5432/postgres) names the
// database; the table is created on first use.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@db:5432/postgres?sslmode=disable"
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		log.Fatalf("demo-api: %v", err)
	}
	host, _ := os.Hostname()
	a := &api{db: pool, host: host}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/healthz", a.healthz)
	mux.HandleFunc("GET /api/visits", a.visits)
	mux.HandleFunc("POST /api/visits", a.visits)
	log.Printf("demo-api listening on :%s", port)
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type api struct {
	db   *pgxpool.Pool
	host string
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.db.Ping(ctx); err != nil {
		http.Error(w, "database: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (a *api) visits(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := a.db.Exec(ctx, `create table if not exists visits (at timestamptz not null default now())`); err != nil {
		fail(w, err)
		return
	}
	if r.Method == http.MethodPost {
		if _, err := a.db.Exec(ctx, `insert into visits default values`); err != nil {
			fail(w, err)
			return
		}
	}
	var n int64
	var version string
	if err := a.db.QueryRow(ctx, `select count(*), current_setting('server_version') from visits`).Scan(&n, &version); err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"visits": n, "servedBy": a.host, "database": "PostgreSQL " + version})
}

func fail(w http.ResponseWriter, err error) {
	log.Printf("demo-api: %v", err)
	http.Error(w, `{"error":"the database is not available"}`, http.StatusServiceUnavailable)
}

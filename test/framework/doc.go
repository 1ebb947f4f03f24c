// Package framework runs the real havre binary for end-to-end tests: it
// builds ./cmd/havre (and a kubectl from the k8s.io/kubectl version in
// go.mod) once per test process, starts servers on loopback ports with
// throw-away data directories, hands out client-go clients and a kubectl
// bound to each server, and offers bounded polling (Eventually, WaitFor) in
// place of sleeps.
//
// It must never reach into Havre's internals: everything goes through the
// binary's command line, its files and its HTTPS API, as a user would.
//
// Environment:
//
//	HAVRE_BINARY             use this havre binary instead of building one
//	HAVRE_KUBECTL            use this kubectl instead of building one
//	HAVRE_TEST_RACE=1        build havre with -race
//	HAVRE_E2E_READY_TIMEOUT  how long to wait for /readyz (default 60s)
//	HAVRE_E2E_LOG_LINES      server log lines printed on failure (default 300, 0 = all)
package framework

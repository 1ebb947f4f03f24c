#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, vet, staticcheck, then
# every unit and end-to-end test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"

# The e2e tests' nodes report DiskPressure (and take no pods) when the
# filesystem under their data dirs has less than 15 % available, as the
# kubelet's default eviction thresholds say: say so up front.
avail=$(df --output=avail,size -k "${TMPDIR:-/tmp}" | awk 'NR==2 {printf "%d", 100*$1/$2}')
if [ "${avail:-100}" -lt 17 ]; then
  echo "warning: only ${avail}% of the filesystem under ${TMPDIR:-/tmp} is available: end-to-end nodes will report DiskPressure below 15%" >&2
  echo "         (free space, e.g. go clean -cache, or find ~/.cache/go-build -type f -mmin +300 -delete)" >&2
fi

echo ">> gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "these files need gofmt:"; echo "$unformatted"; exit 1
fi

echo ">> go vet"
go vet ./...
(cd test/rbacdiff && go vet ./...)
(cd test/gatewayconformance && go vet ./...)

echo ">> staticcheck"
if ! command -v staticcheck >/dev/null 2>&1; then
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
staticcheck ./...
(cd test/rbacdiff && staticcheck ./...)
(cd test/gatewayconformance && staticcheck ./...)

echo ">> go test -race"
# End-to-end tests run the havre binary built with -race too: built once here
# for every package (each would otherwise link its own, ~12 s of CPU apiece).
export HAVRE_TEST_RACE=1
if [ -z "${HAVRE_BINARY:-}" ]; then
  bin_dir=$(mktemp -d /tmp/havre-test-bin-XXXXXX)
  trap 'rm -rf "$bin_dir"' EXIT
  go build -race -o "$bin_dir/havre" ./cmd/havre
  export HAVRE_BINARY="$bin_dir/havre"
fi
go test -race -count=1 -timeout 40m "$@" ./...

# test/rbacdiff is a module of its own (it imports k8s.io/kubernetes, which
# the main module must not require): Havre's RBAC against upstream's code.
echo ">> go test -race ./test/rbacdiff"
(cd test/rbacdiff && go test -race -count=1 ./...)

# test/gatewayconformance is a module of its own too (the conformance suite
# brings controller-runtime): the Gateway API conformance suite's core
# Gateway-HTTP tests against a server with its node agent.
echo ">> go test -race ./test/gatewayconformance"
(cd test/gatewayconformance && go test -race -count=1 -timeout 20m ./...)

# Every fuzz target for a bounded time (what strangers can send: bodies,
# patches, selectors, tokens); `make fuzz FUZZTIME=10m` runs them longer.
echo ">> fuzz (${FUZZTIME:-10s} each)"
FUZZTIME=${FUZZTIME:-10s} bash hack/fuzz.sh

#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (default 10s; CI runs the
# default, `FUZZTIME=10m bash hack/fuzz.sh` is the longer run). A target
# that finds a failing input writes it under the package's testdata/fuzz/;
# commit it: it then runs in every `go test` as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
fuzztime=${FUZZTIME:-10s}
status=0
while read -r pkg dir; do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo ">> $pkg $target ($fuzztime)"
    # -parallel 1: the machine has two cores and the rest of CI on them.
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 1; then
      status=1
    fi
  done
done < <(go list -f '{{if .TestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...)
exit $status

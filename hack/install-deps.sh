#!/usr/bin/env bash
# Installs what building and testing Havre needs on a Debian machine: a Go
# toolchain new enough for go.mod (fetched through the Go module proxy when
# the installed one is older) and the system packages the tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(awk '/^go /{print $2}' go.mod)
export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo ">> installing a bootstrap Go from Debian (the toolchain in go.mod is fetched by it)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq golang-go >/dev/null
fi
# GOTOOLCHAIN=auto makes an older go download go$want through the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
echo ">> $(go version) (go.mod wants go$want)"
go mod download

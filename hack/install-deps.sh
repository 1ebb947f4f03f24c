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
# Debian's kubectl 1.20 (package kubernetes-client), the old client the e2e
# suite also drives. It is unpacked rather than installed: its /usr/bin/kubectl
# clashes with other kubectl packages some machines carry.
old_kubectl=/opt/havre-test/kubectl-1.20/kubectl
if [ ! -x "$old_kubectl" ]; then
  echo ">> unpacking Debian's kubernetes-client (kubectl 1.20) into $(dirname "$old_kubectl")"
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download kubernetes-client >/dev/null 2>&1 || { apt-get update -qq && apt-get download kubernetes-client >/dev/null; }; } \
    && dpkg-deb -x kubernetes-client_*.deb x)
  mkdir -p "$(dirname "$old_kubectl")"
  install -m 0755 "$tmp/x/usr/bin/kubectl" "$old_kubectl"
  rm -rf "$tmp"
fi

# The node agent runs pods on a containerd of its own (it only needs the
# binaries; no system containerd service is used), with runc and the CNI
# plugins (bridge, host-local, portmap, loopback in /usr/lib/cni).
if ! command -v containerd >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || [ ! -x /usr/lib/cni/bridge ]; then
  echo ">> installing containerd, runc and containernetworking-plugins from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends containerd runc containernetworking-plugins iptables >/dev/null
fi
# Debian's nft reads the service proxy's tables back in tests (Havre itself
# programs nftables over netlink); nsenter (util-linux) runs the test
# clusters' nodes in their network namespaces.
if ! command -v nft >/dev/null 2>&1 || ! command -v nsenter >/dev/null 2>&1; then
  echo ">> installing nftables and util-linux from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nftables util-linux >/dev/null
fi

# The storage tests run a real PostgreSQL, whose image they build from
# Debian's packages on this machine (framework.PostgresImage).
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo ">> installing postgresql from Debian (the storage tests' database image)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Only its files are needed: the tests never run the machine's cluster.
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

# Local volumes: btrfs subvolumes with quota groups (btrfs-progs), xfs
# project quotas (xfsprogs); the tests make such filesystems on loop devices.
if ! command -v btrfs >/dev/null 2>&1 || ! command -v xfs_quota >/dev/null 2>&1 || ! command -v mkfs.xfs >/dev/null 2>&1; then
  echo ">> installing btrfs-progs and xfsprogs from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends btrfs-progs xfsprogs >/dev/null
fi

# The demo's frontend image and the ingress benchmarks' reference proxy use
# Debian's nginx. It is installed without being started (a policy-rc.d that
# refuses service starts while apt runs): nothing of this machine may hold
# ports 80 and 443, which the node's ingress proxy serves.
if [ ! -x /usr/sbin/nginx ]; then
  echo ">> installing nginx from Debian (not started)"
  export DEBIAN_FRONTEND=noninteractive
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=/usr/sbin/policy-rc.d
  fi
  { apt-get install -y -qq --no-install-recommends nginx >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx >/dev/null; }; } || { [ -z "$policy" ] || rm -f "$policy"; exit 1; }
  [ -z "$policy" ] || rm -f "$policy"
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi

# GOTOOLCHAIN=auto makes an older go download go$want through the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
echo ">> $(go version) (go.mod wants go$want)"
go mod download

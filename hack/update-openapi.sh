#!/usr/bin/env bash
# Regenerates internal/openapi/zz_generated.openapi.go: the OpenAPI
# definitions of every Go type Havre serves, produced by kube-openapi's
# openapi-gen from the k8s.io/api and k8s.io/apimachinery sources.
#
# Run it (or `go generate ./internal/openapi`) after adding a served API
# group/version or bumping k8s.io/api or k8s.io/kube-openapi. The generator
# is run at the k8s.io/kube-openapi version go.mod already requires, through
# the Go module proxy, so go.mod is not touched; it reads the API packages at
# the versions go.mod requires (from the module cache).
#
# Usage: hack/update-openapi.sh [--verify]
#   --verify  fails if the committed file differs from a fresh generation.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# Every package holding a type that appears in a served document. A kind from
# a package missing here fails internal/openapi's tests ("no definition").
packages=(
  k8s.io/apimachinery/pkg/apis/meta/v1
  k8s.io/apimachinery/pkg/api/resource
  k8s.io/apimachinery/pkg/runtime
  k8s.io/apimachinery/pkg/util/intstr
  k8s.io/apimachinery/pkg/version
  k8s.io/api/admissionregistration/v1
  k8s.io/api/authentication/v1
  k8s.io/api/authorization/v1
  k8s.io/api/core/v1
  k8s.io/api/apps/v1
  k8s.io/api/autoscaling/v1 # Scale, the scale subresource's kind
  k8s.io/api/autoscaling/v2
  k8s.io/api/batch/v1
  k8s.io/api/coordination/v1
  k8s.io/api/discovery/v1
  k8s.io/api/events/v1
  k8s.io/api/networking/v1
  k8s.io/api/policy/v1
  k8s.io/api/rbac/v1
  k8s.io/api/scheduling/v1
  k8s.io/api/scheduling/v1alpha3 # referenced by batch/v1 JobSpec
  k8s.io/api/storage/v1
  k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1
)

out_dir=internal/openapi
out_file=zz_generated.openapi.go
verify=false
if [ "${1:-}" = "--verify" ]; then
  verify=true
fi

kube_openapi=$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The generated code names every type of the packages, deprecated ones too.
cat >"$tmp/header.txt" <<'EOF_HEADER'
//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.
EOF_HEADER

# openapi-gen reports API rule violations (names_match, list_type_missing,
# ...) that are upstream's to fix; kube-apiserver keeps an exception list for
# them. A report file, rather than stdout, keeps them from failing the run.
go run "k8s.io/kube-openapi/cmd/openapi-gen@${kube_openapi}" \
  --output-dir "$tmp" \
  --output-pkg github.com/havre/havre/internal/openapi \
  --output-file "$out_file" \
  --go-header-file "$tmp/header.txt" \
  --report-filename "$tmp/api-violations.list" \
  "${packages[@]}"

if [ "$verify" = true ]; then
  if ! cmp -s "$tmp/$out_file" "$out_dir/$out_file"; then
    echo "$out_dir/$out_file is out of date: run hack/update-openapi.sh" >&2
    exit 1
  fi
  echo "$out_dir/$out_file is up to date"
  exit 0
fi
mv "$tmp/$out_file" "$out_dir/$out_file"
echo "wrote $out_dir/$out_file ($(wc -c <"$out_dir/$out_file") bytes, $(grep -c 'OpenAPIModelName():' "$out_dir/$out_file") definitions;" \
  "$(wc -l <"$tmp/api-violations.list") upstream API rule violations ignored)"

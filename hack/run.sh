#!/usr/bin/env bash
# Starts a Havre server in the background and applies the demo workload.
# Usage: hack/run.sh [DATA_DIR] [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:-/var/lib/havre}
port=${2:-6443}
export PATH="/usr/local/go/bin:$PATH"

mkdir -p "$data_dir"
if [ -f "$data_dir/havre.pid" ] && kill -0 "$(cat "$data_dir/havre.pid")" 2>/dev/null; then
  echo ">> havre server already running (pid $(cat "$data_dir/havre.pid"))"
else
  echo ">> starting havre server (log: $data_dir/havre.log)"
  nohup bin/havre server --data-dir "$data_dir" --https-port "$port" >"$data_dir/havre.log" 2>&1 &
  echo $! >"$data_dir/havre.pid"
fi
for _ in $(seq 1 100); do
  if curl -fsk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$data_dir/havre.pid")" 2>/dev/null; then
    echo "havre server exited; its log:" >&2; cat "$data_dir/havre.log" >&2; exit 1
  fi
  sleep 0.1
done
kubectl() { bin/havre kubectl --data-dir "$data_dir" "$@"; }
echo ">> waiting for the node"
for _ in $(seq 1 100); do
  if kubectl get nodes -o name 2>/dev/null | grep -q node/; then break; fi
  sleep 0.2
done
kubectl wait --for=condition=Ready node --all --timeout=60s
echo ">> building and importing the demo images: frontend (Debian's nginx), API (test/images/demo-api), database (Debian's PostgreSQL)"
for spec in "test/images/frontend -nginx havre.local/demo/frontend:0.1" "test/images/demo-api havre.local/demo/api:0.1" "test/images/postgres -postgres havre.local/demo/postgres:0.1"; do
  set -- $spec
  dir=$1; shift
  flags=(); [ "$#" -eq 2 ] && { flags=("$1"); shift; }
  archive=$(go run ./hack/image -dir "$dir" "${flags[@]}" -ref "$1" -out bin)
  bin/havre image import --data-dir "$data_dir" "$archive"
done
echo ">> applying the demo workload (deploy/demo.yaml)"
kubectl apply -f deploy/demo.yaml
kubectl -n demo rollout status deployment/frontend --timeout=120s
kubectl -n demo rollout status deployment/api --timeout=120s
kubectl -n demo rollout status statefulset/db --timeout=180s
kubectl get all,ingress,pvc -n demo
echo ">> waiting for the demo's certificate (Secret demo/demo-tls, from the cluster issuer: demo.havre.test is a private name)"
for _ in $(seq 1 150); do
  kubectl -n demo get secret demo-tls >/dev/null 2>&1 && break
  sleep 0.2
done
kubectl -n kube-system get secret havre-cluster-issuer -o jsonpath='{.data.tls\.crt}' | base64 -d >"$data_dir/ingress-ca.crt"
ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
resolve=(--resolve "demo.havre.test:443:$ip" --resolve "demo.havre.test:80:$ip" --cacert "$data_dir/ingress-ca.crt")
answer=""
for _ in $(seq 1 50); do
  if answer=$(curl -fsS -m 2 "${resolve[@]}" -X POST https://demo.havre.test/api/visits 2>/dev/null); then break; fi
  sleep 0.2
done
echo ">> POST https://demo.havre.test/api/visits (through the node's ingress proxy at $ip) answers: ${answer:-nothing yet}"
echo ">> GET http://demo.havre.test/ is redirected:"
curl -sS -o /dev/null -w '   %{http_code} -> %{redirect_url}\n' "${resolve[@]}" http://demo.havre.test/ || true
echo ">> the database keeps its data on a volume of the default StorageClass:"
kubectl -n demo get pvc
cat <<MSG

Havre is running, with the demo at https://demo.havre.test/ on $ip (the built-in ingress
proxy serves ports 80 and 443 of every node). To open it in a browser, add
  $ip demo.havre.test
to /etc/hosts and trust $data_dir/ingress-ca.crt (the cluster issuer's CA), or:
  curl --resolve demo.havre.test:443:$ip --cacert $data_dir/ingress-ca.crt https://demo.havre.test/
Use it with:
  $(pwd)/bin/havre kubectl --data-dir $data_dir get namespaces
or any kubectl with KUBECONFIG=$data_dir/admin.kubeconfig.
Stop the server with: kill \$(cat $data_dir/havre.pid)   (its pods keep running, as a node's do)
Stop the node cleanly or uninstall: after that, bin/havre agent reset --data-dir $data_dir
  (removes the pods, their mounts, the pod bridge and Havre's nftables tables)
MSG

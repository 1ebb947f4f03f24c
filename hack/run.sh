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
echo ">> building and importing the demo image (test/images/web as havre.local/demo/web:0.1)"
archive=$(go run ./hack/image -dir test/images/web -ref havre.local/demo/web:0.1 -out bin)
bin/havre image import --data-dir "$data_dir" "$archive"
echo ">> building and importing the demo database image (Debian's PostgreSQL as havre.local/demo/postgres:0.1)"
archive=$(go run ./hack/image -dir test/images/postgres -postgres -ref havre.local/demo/postgres:0.1 -out bin)
bin/havre image import --data-dir "$data_dir" "$archive"
echo ">> applying the demo workload (deploy/demo.yaml)"
kubectl apply -f deploy/demo.yaml
kubectl -n demo rollout status deployment/web --timeout=120s
kubectl -n demo rollout status statefulset/db --timeout=180s
kubectl get all -n demo
echo ">> waiting for the demo's address (a LoadBalancer Service, served on the node's address)"
lb=""
for _ in $(seq 1 100); do
  lb=$(kubectl -n demo get service web -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null || true)
  [ -n "$lb" ] && break
  sleep 0.2
done
answer=""
for _ in $(seq 1 50); do
  if answer=$(curl -fsS -m 2 "http://$lb/" 2>/dev/null); then break; fi
  sleep 0.2
done
echo ">> GET http://$lb/ answers: ${answer:-nothing yet}"
echo ">> inside the cluster, by name: GET http://web.demo.svc.cluster.local/ from a demo pod answers:"
kubectl -n demo exec deploy/web -- get http://web.demo.svc.cluster.local/ || true
echo ">> the database keeps its data on a volume of the default StorageClass:"
kubectl -n demo get pvc
kubectl -n demo exec db-0 -- /postgres psql -c "create table if not exists visits (at timestamptz default now())" -c "insert into visits default values" -c "select count(*) as visits from visits" || true
cat <<MSG

Havre is running, with the demo at http://$lb/ (and http://web.demo.svc.cluster.local/ in the cluster).
Use it with:
  $(pwd)/bin/havre kubectl --data-dir $data_dir get namespaces
or any kubectl with KUBECONFIG=$data_dir/admin.kubeconfig.
Stop the server with: kill \$(cat $data_dir/havre.pid)   (its pods keep running, as a node's do)
Stop the node cleanly or uninstall: after that, bin/havre agent reset --data-dir $data_dir
  (removes the pods, their mounts, the pod bridge and Havre's nftables tables)
MSG

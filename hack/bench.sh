#!/usr/bin/env bash
# Runs the benchmarks recorded in BENCHMARKS.md. Run on an otherwise idle
# machine: client and server share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
echo ">> store (internal/storage/bolt)"
go test -run '^$' -bench . -benchtime 2s -benchmem ./internal/storage/bolt/
echo ">> API through client-go over HTTPS (test/e2e/api)"
go test -run '^$' -bench . -benchtime 3s ./test/e2e/api/
echo ">> service proxy (internal/network/proxy, as root)"
(cd internal/network/proxy && go test -run XXX -bench ServiceChange -benchtime 200x && go test -run XXX -bench 'ModelBuild|ColdSync' -benchtime 3x && go test -run XXX -bench FirstPacket -benchtime 5000x -count=3)
echo ">> pod network across nodes (internal/network/overlay, as root)"
go test ./internal/network/overlay -run '^$' -bench 'BenchmarkPodToPodTCP$' -benchtime 60x -count 3
go test ./internal/network/overlay -run '^$' -bench BenchmarkPodToPodIperf3 -benchtime 3x
go test ./internal/network/overlay -run '^$' -bench 'BenchmarkPodToPodRTT|BenchmarkNewNodeReachable' -benchtime 2s
go test ./internal/network/overlay -run '^$' -bench BenchmarkResync -benchtime 20x
echo ">> NetworkPolicy (internal/network/netpol, as root)"
(cd internal/network/netpol && go test -run '^$' -bench . -benchtime 200x && go test -run '^$' -bench FirstPacket -benchtime 200x -count 3)
echo ">> cluster DNS (internal/network/dns)"
go test -run '^$' -bench . -benchtime 2s -benchmem ./internal/network/dns/
go run ./hack/dnsperf
echo ">> Services end to end (test/e2e/network)"
go test ./test/e2e/network/ -run '^$' -bench ReadyToReachable -benchtime=20x
go test ./test/e2e/network/ -run '^$' -bench ServiceResolvable -benchtime=100x
go test ./test/e2e/network/ -run '^$' -bench AgentServicesRSS -benchtime=1x
go test ./test/e2e/network/ -run '^$' -bench NetworkPolicyEnforced -benchtime=40x
echo ">> custom resources and RBAC (test/e2e/crd, internal/auth/rbac)"
go test ./test/e2e/crd -run '^$' -bench 'CRDEstablished|CRDUsableByKubectl' -benchtime 10x
go test ./test/e2e/crd -run '^$' -bench CreateGet -benchtime 2s -count 3
go test ./test/e2e/crd -run '^$' -bench RSS100 -benchtime 1x
go test ./internal/auth/rbac -run '^$' -bench BenchmarkAuthorize -benchtime 200000x -count 5
echo ">> storage (internal/volume/local and test/e2e/storage, as root)"
go test ./internal/volume/local -run '^$' -bench 'Snapshot|LoopCreate' -benchtime 3x
go test ./test/e2e/storage -run '^$' -bench ClaimPodStartup -benchtime=20x
go test ./test/e2e/storage -run '^$' -bench StatefulSetClaims -benchtime=1x
echo ">> ingress proxy, Gateway API and certificates (test/e2e/ingress, internal/network/gateway, test/e2e/certificates; as root)"
go test ./test/e2e/ingress -run '^$' -bench ProxyVsNginx -benchtime 1x
go test ./test/e2e/ingress -run '^$' -bench IngressChangeServed -benchtime 50x
go test ./test/e2e/ingress -run '^$' -bench ProxyRSS1000Hosts -benchtime 1x
go test ./internal/network/ingress -run TestMemoryThousandHosts -v -count=1
go test ./internal/network/gateway -run '^$' -bench Resolve
go test ./test/e2e/certificates -v -count=1

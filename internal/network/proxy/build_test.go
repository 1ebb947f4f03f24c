package proxy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

type buildCase struct {
	name     string
	services []*v1.Service
	slices   []*discovery.EndpointSlice
}

func buildCases() []buildCase {
	web := []slicePort{tcp("http", 8080)}
	return []buildCase{
		{name: "clusterip", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0)),
			svc("ns1", "empty", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0)),
			svc("ns1", "headless", "None", port("http", v1.ProtocolTCP, 80, 0)),
			svc("ns1", "external-name", "", typ(v1.ServiceTypeExternalName)),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5"), ep("10.42.1.6", onNode("node-b")), ep("10.42.1.7", notReady())),
		}},
		{name: "nodeport", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30080)),
			svc("ns1", "empty", "10.43.0.21", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30081)),
		}, slices: []*discovery.EndpointSlice{slice("ns1", "web", "web-1", web, ep("10.42.1.6", onNode("node-b")))}},
		{name: "loadbalancer-externalips", services: []*v1.Service{
			svc("ns1", "lb", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 30080), lbIngress("203.0.113.10")),
			svc("ns1", "ext", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0), externalIPs("198.51.100.7")),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "lb", "lb-1", web, ep("10.42.1.6", onNode("node-b"))),
			slice("ns1", "ext", "ext-1", web, ep("10.42.0.5")),
		}},
		{name: "affinity", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0), affinity(600)),
		}, slices: []*discovery.EndpointSlice{slice("ns1", "web", "web-1", web, ep("10.42.0.5"), ep("10.42.1.6", onNode("node-b")))}},
		{name: "external-traffic-policy-local", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30080), etpLocal(32000)),
			svc("ns1", "remote", "10.43.0.21", typ(v1.ServiceTypeNodePort), port("http", v1.ProtocolTCP, 80, 30081), etpLocal(32001)),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5"), ep("10.42.1.6", onNode("node-b"))),
			slice("ns1", "remote", "remote-1", web, ep("10.42.1.7", onNode("node-b"))),
		}},
		{name: "internal-traffic-policy-local", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0), itpLocal()),
			svc("ns1", "remote", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0), itpLocal()),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5"), ep("10.42.1.6", onNode("node-b"))),
			slice("ns1", "remote", "remote-1", web, ep("10.42.1.7", onNode("node-b"))),
		}},
		{name: "terminating-fallback", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0)),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5", terminating(true)), ep("10.42.1.6", terminating(false)), ep("10.42.1.7", notReady())),
		}},
		{name: "prefer-same-zone", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0), distribution(v1.ServiceTrafficDistributionPreferSameZone)),
			svc("ns1", "close", "10.43.0.21", port("http", v1.ProtocolTCP, 80, 0), distribution(v1.ServiceTrafficDistributionPreferClose)),
			svc("ns1", "partial", "10.43.0.22", port("http", v1.ProtocolTCP, 80, 0), distribution(v1.ServiceTrafficDistributionPreferSameZone)),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5", zoneHint("zone-a")), ep("10.42.1.6", onNode("node-b"), zoneHint("zone-b"))),
			slice("ns1", "close", "close-1", web, ep("10.42.0.8", zoneHint("zone-a")), ep("10.42.1.9", onNode("node-b"), zoneHint("zone-b"))),
			// One endpoint without hints: hints are ignored, as upstream.
			slice("ns1", "partial", "partial-1", web, ep("10.42.0.10", zoneHint("zone-a")), ep("10.42.1.11", onNode("node-b"))),
		}},
		{name: "prefer-same-node", services: []*v1.Service{
			svc("ns1", "web", "10.43.0.20", port("http", v1.ProtocolTCP, 80, 0), distribution(v1.ServiceTrafficDistributionPreferSameNode)),
		}, slices: []*discovery.EndpointSlice{
			slice("ns1", "web", "web-1", web, ep("10.42.0.5", nodeHint("node-a"), zoneHint("zone-a")), ep("10.42.0.6", nodeHint("node-a"), zoneHint("zone-a")), ep("10.42.1.6", onNode("node-b"), nodeHint("node-b"), zoneHint("zone-a"))),
		}},
		{name: "tcp-and-udp-same-port", services: []*v1.Service{
			svc("ns1", "dns", "10.43.0.53", port("dns", v1.ProtocolUDP, 53, 0), port("dns-tcp", v1.ProtocolTCP, 53, 0)),
		}, slices: []*discovery.EndpointSlice{slice("ns1", "dns", "dns-1", []slicePort{udp("dns", 5353), tcp("dns-tcp", 5353)}, ep("10.42.0.5"))}},
		{name: "local-dns", services: []*v1.Service{
			svc("kube-system", "kube-dns", "10.43.0.10", port("dns", v1.ProtocolUDP, 53, 0), port("dns-tcp", v1.ProtocolTCP, 53, 0), port("metrics", v1.ProtocolTCP, 9153, 0)),
		}, slices: []*discovery.EndpointSlice{slice("kube-system", "kube-dns", "kube-dns-1", []slicePort{udp("dns", 53), tcp("dns-tcp", 53), tcp("metrics", 9153)}, ep("10.42.1.3", onNode("node-b")))}},
	}
}

// TestGoldenRuleset compares the rendered table of each case with testdata/<case>.nft
// (go test -run TestGoldenRuleset -update rewrites them).
func TestGoldenRuleset(t *testing.T) {
	for _, tc := range buildCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(testBuildConfig(), tc.services, tc.slices).Text()
			if again := Build(testBuildConfig(), tc.services, tc.slices).Text(); again != got {
				t.Fatal("Build is not deterministic")
			}
			path := filepath.Join("testdata", tc.name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != got {
				t.Errorf("ruleset differs from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

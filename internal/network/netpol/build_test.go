package netpol

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/network/nft"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

type buildCase struct {
	name string
	objs []runtime.Object
}

// world is the objects every case starts from: namespaces x (team=blue) and y (team=red),
// pods on this node (x/a, x/b, y/a) and one on another node (y/b).
func world() []runtime.Object {
	return []runtime.Object{
		namespace("x", "team", "blue"), namespace("y", "team", "red"),
		testPod("x", "a", testNode, "10.42.0.10", "app=web", containerPort("http", corev1.ProtocolTCP, 8080), containerPort("dns", corev1.ProtocolUDP, 5353)),
		testPod("x", "b", testNode, "10.42.0.11", "app=client"),
		testPod("y", "a", testNode, "10.42.0.12", "app=client", containerPort("http", corev1.ProtocolTCP, 9090)),
		testPod("y", "b", "node-b", "10.42.1.20", "app=client", containerPort("http", corev1.ProtocolTCP, 8081)),
	}
}

func with(objs ...runtime.Object) []runtime.Object { return append(world(), objs...) }

func buildCases() []buildCase {
	return []buildCase{
		{name: "no-policies", objs: world()},
		{name: "default-deny-ingress", objs: with(netpol("x", "deny", "", denyIngress()))},
		{name: "default-deny-egress", objs: with(netpol("x", "deny", "", types_(typeEgress)))},
		{name: "pod-selector", objs: with(netpol("x", "allow-clients", "app=web", ingressRule(peers(podPeer("app=client")))))},
		{name: "namespace-selector", objs: with(netpol("x", "allow-red", "app=web", ingressRule(peers(nsPeer("team=red")))))},
		{name: "pod-and-namespace-selector", objs: with(netpol("x", "allow-red-clients", "app=web", ingressRule(peers(nsPodPeer("team=red", "app=client")))))},
		{name: "ipblock-except", objs: with(netpol("x", "cidr", "app=web",
			types_(typeIngress, typeEgress),
			ingressRule(peers(blockPeer("10.42.0.0/16", "10.42.1.0/24", "10.42.0.11/32"))),
			egressRule(peers(blockPeer("0.0.0.0/0", "169.254.0.0/16"), blockPeer("fd00::/8")))))},
		{name: "ports", objs: with(netpol("x", "ports", "app=web", ingressRule(nil,
			port(corev1.ProtocolTCP, 80), port(corev1.ProtocolUDP, 53), port(corev1.ProtocolSCTP, 9000),
			portsRange(corev1.ProtocolTCP, 8000, 8080), protoOnly(corev1.ProtocolUDP))))},
		{name: "named-ports-ingress", objs: with(netpol("x", "named", "", ingressRule(peers(podPeer("")), namedPortOf("", "http"), namedPortOf(corev1.ProtocolUDP, "dns"))))},
		{name: "named-ports-egress", objs: with(netpol("x", "named", "app=client", types_(typeEgress), egressRule(peers(nsPeer("")), namedPortOf("", "http"))))},
		{name: "multiple-policies", objs: with(
			netpol("x", "allow-clients", "app=web", ingressRule(peers(podPeer("app=client")))),
			netpol("x", "allow-red", "app=web", ingressRule(peers(nsPeer("team=red")), port(corev1.ProtocolTCP, 8080))),
			netpol("x", "deny-all", "", denyIngress()),
		)},
		{name: "policy-types", objs: with(
			// Egress rules without policyTypes: both directions.
			netpol("x", "both", "app=web", ingressRule(nil), egressRule(peers(podPeer("")))),
			// policyTypes Ingress only: its egress rules are ignored.
			netpol("x", "ingress-only", "app=client", types_(typeIngress), egressRule(nil)),
		)},
		{name: "shared-peer-set", objs: with(
			netpol("x", "one", "app=web", ingressRule(peers(podPeer("app=client")))),
			netpol("x", "two", "app=client", ingressRule(peers(podPeer("app=client")))),
		)},
		{name: "host-network-and-finished-pods", objs: with(
			testPod("x", "host", testNode, "192.168.0.2", "app=client", hostNetwork()),
			testPod("x", "done", testNode, "10.42.0.30", "app=client", phase(corev1.PodSucceeded)),
			netpol("x", "allow-clients", "", ingressRule(peers(podPeer("app=client")))),
		)},
	}
}

func buildModel(objs []runtime.Object) nft.Table {
	e := newEngine(testEngineConfig())
	feed(e, objs...)
	return e.model()
}

// TestGoldenRuleset compares the table of each case with testdata/<case>.nft (go test -run
// TestGoldenRuleset -update rewrites them).
func TestGoldenRuleset(t *testing.T) {
	for _, tc := range buildCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := nft.Text([]nft.Table{buildModel(tc.objs)})
			// The same objects in reverse order make the same table.
			rev := make([]runtime.Object, len(tc.objs))
			for i, o := range tc.objs {
				rev[len(tc.objs)-1-i] = o
			}
			if again := nft.Text([]nft.Table{buildModel(rev)}); again != got {
				t.Fatalf("the table depends on the order of events:\n%s\nreversed:\n%s", got, again)
			}
			path := filepath.Join("testdata", tc.name+".nft")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
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

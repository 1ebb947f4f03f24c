package netpol

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/network/nft"
)

// incremental applies an engine's changes to fragments kept by owner, as syncs do.
type incremental struct {
	e     *engine
	frags map[owner]*nft.Fragment
}

func (in *incremental) sync() {
	for o := range in.e.takeDirty() {
		if f := in.e.build(o); f != nil {
			in.frags[o] = f
		} else {
			delete(in.frags, o)
		}
	}
}

func (in *incremental) text() string {
	owners := make([]owner, 0, len(in.frags))
	for o := range in.frags {
		owners = append(owners, o)
	}
	sort.Slice(owners, func(i, j int) bool {
		if owners[i].kind != owners[j].kind {
			return owners[i].kind < owners[j].kind
		}
		return owners[i].key < owners[j].key
	})
	t := nft.Table{Name: in.e.cfg.table}
	for _, o := range owners {
		t.Frags = append(t.Frags, in.frags[o])
	}
	return nft.Text([]nft.Table{t})
}

// TestIncrementalMatchesFull: after every change of a long random sequence (pods come, go,
// change labels, addresses, ports and phase; namespaces change labels; policies come, change
// and go; the agent tells of starting pods, some reusing the address of a pod still being
// deleted), the table kept by rebuilding only what each change marked is the table a fresh
// engine builds from the same objects.
func TestIncrementalMatchesFull(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	namespaces := []string{"x", "y", "z"}
	podNames := []string{"a", "b", "c", "d"}
	apps := []string{"web", "db", "client"}
	nsObjs := map[string]*corev1.Namespace{}
	pods := map[string]*corev1.Pod{}
	policies := map[types.NamespacedName]*networkingv1.NetworkPolicy{}
	started := map[types.UID]*startInfo{}
	var seq uint64

	in := &incremental{e: newEngine(testEngineConfig()), frags: map[owner]*nft.Fragment{}}
	randomPolicy := func(ns, name string) *networkingv1.NetworkPolicy {
		var opts []polOpt
		switch rnd.IntN(3) {
		case 0:
			opts = append(opts, types_(typeIngress))
		case 1:
			opts = append(opts, types_(typeEgress))
		default:
			opts = append(opts, types_(typeIngress, typeEgress))
		}
		peerChoices := []networkingv1.NetworkPolicyPeer{
			podPeer("app=" + apps[rnd.IntN(3)]), nsPeer("team=" + []string{"blue", "red"}[rnd.IntN(2)]),
			nsPodPeer("", "app="+apps[rnd.IntN(3)]), blockPeer("10.42.0.0/16", "10.42.0.12/32"), podPeer(""),
		}
		portChoices := []networkingv1.NetworkPolicyPort{
			port(corev1.ProtocolTCP, 80), namedPortOf("", "http"), namedPortOf(corev1.ProtocolUDP, "dns"), protoOnly(corev1.ProtocolUDP),
		}
		for range rnd.IntN(3) {
			var ps []networkingv1.NetworkPolicyPeer
			for range rnd.IntN(3) {
				ps = append(ps, peerChoices[rnd.IntN(len(peerChoices))])
			}
			var pts []networkingv1.NetworkPolicyPort
			for range rnd.IntN(2) {
				pts = append(pts, portChoices[rnd.IntN(len(portChoices))])
			}
			opts = append(opts, ingressRule(ps, pts...), egressRule(ps, pts...))
		}
		sel := ""
		if rnd.IntN(2) == 0 {
			sel = "app=" + apps[rnd.IntN(3)]
		}
		return netpol(ns, name, sel, opts...)
	}
	randomPod := func(ns, name string, old *corev1.Pod) *corev1.Pod {
		node := testNode
		if rnd.IntN(3) == 0 {
			node = "node-b"
		}
		ip := fmt.Sprintf("10.42.%d.%d", map[bool]int{true: 0, false: 1}[node == testNode], 10+rnd.IntN(12))
		var opts []podOpt
		if rnd.IntN(2) == 0 {
			opts = append(opts, containerPort("http", corev1.ProtocolTCP, int32(8000+rnd.IntN(3))))
		}
		if rnd.IntN(3) == 0 {
			opts = append(opts, containerPort("dns", corev1.ProtocolUDP, 53))
		}
		if rnd.IntN(10) == 0 {
			opts = append(opts, phase(corev1.PodSucceeded))
		}
		if rnd.IntN(12) == 0 {
			opts = append(opts, hostNetwork())
		}
		p := testPod(ns, name, node, ip, "app="+apps[rnd.IntN(3)], opts...)
		if rnd.IntN(4) == 0 {
			p.Status.PodIPs, p.Status.PodIP = nil, "" // not yet
		}
		if old != nil && rnd.IntN(3) > 0 {
			p.UID = old.UID // the same pod, changed
		} else {
			p.UID = types.UID(fmt.Sprintf("%s-%s-%d", ns, name, rnd.Int()))
			p.CreationTimestamp = metav1.NewTime(p.CreationTimestamp.Add(metav1.Now().Sub(p.CreationTimestamp.Time) / 1000))
		}
		if rnd.IntN(8) == 0 {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}

	for step := range 3000 {
		var what string
		switch r := rnd.IntN(20); {
		case r < 8:
			ns, name := namespaces[rnd.IntN(3)], podNames[rnd.IntN(4)]
			key := ns + "/" + name
			if old := pods[key]; old != nil && rnd.IntN(4) == 0 {
				delete(pods, key)
				in.e.setInformerPod(key, nil)
				delete(started, old.UID)
				what = "delete pod " + key
			} else {
				p := randomPod(ns, name, old)
				if old != nil && old.UID != p.UID {
					delete(started, old.UID)
				}
				pods[key] = p
				in.e.setInformerPod(key, p)
				what = "set pod " + key
			}
		case r < 10:
			// The agent starts a pod of this node, perhaps on an address another pod still has.
			ns, name := namespaces[rnd.IntN(3)], podNames[rnd.IntN(4)]
			key := ns + "/" + name
			p := pods[key]
			if p == nil || p.Spec.NodeName != testNode || p.Spec.HostNetwork {
				continue
			}
			seq++
			ips := []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.42.0.%d", 10+rnd.IntN(12)))}
			started[p.UID] = &startInfo{pod: p, ips: ips, seq: seq}
			in.e.startPod(p, ips, seq)
			what = "start pod " + key
		case r < 12:
			ns := namespaces[rnd.IntN(3)]
			if rnd.IntN(5) == 0 {
				delete(nsObjs, ns)
				in.e.setNamespace(ns, nil)
			} else {
				o := namespace(ns, "team", []string{"blue", "red"}[rnd.IntN(2)])
				nsObjs[ns] = o
				in.e.setNamespace(ns, o)
			}
			what = "namespace " + ns
		default:
			key := types.NamespacedName{Namespace: namespaces[rnd.IntN(3)], Name: fmt.Sprintf("p%d", rnd.IntN(4))}
			if policies[key] != nil && rnd.IntN(3) == 0 {
				delete(policies, key)
				in.e.setPolicy(key, nil)
				what = "delete policy " + key.String()
			} else {
				np := randomPolicy(key.Namespace, key.Name)
				policies[key] = np
				in.e.setPolicy(key, np)
				what = "set policy " + key.String()
			}
		}
		in.sync()

		fresh := newEngine(testEngineConfig())
		for _, o := range nsObjs {
			fresh.setNamespace(o.Name, o)
		}
		for key, p := range pods {
			fresh.setInformerPod(key, p)
		}
		for k, np := range policies {
			fresh.setPolicy(k, np)
		}
		var starts []*startInfo
		for _, s := range started {
			starts = append(starts, s)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i].seq < starts[j].seq })
		for _, s := range starts {
			fresh.startPod(s.pod, s.ips, s.seq)
		}
		want := nft.Text([]nft.Table{fresh.model()})
		if got := in.text(); got != want {
			t.Fatalf("step %d (%s): the incremental table differs from a fresh one:\n%s\nfresh:\n%s", step, what, got, want)
		}
	}
}

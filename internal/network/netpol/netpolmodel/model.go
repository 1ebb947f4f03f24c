// Package netpolmodel is the model of upstream's NetworkPolicy e2e tests
// (kubernetes test/e2e/network/netpol), shared by netpol's own tests (its tables walked by
// the tracer, and in the kernel) and the cluster's e2e test (test/e2e/network): namespaces
// x, y, z, each with pods a, b, c; every pod serves ports 80 and 81 over TCP, UDP and SCTP,
// each port named serve-<port>-<protocol>; pods are labelled pod=<name>, namespaces
// kubernetes.io/metadata.name=<name> and ns=<name>. Each case is one of upstream's, named as
// upstream names it, as steps: changes to a World (policies created, updated, deleted;
// labels added), then upstream's expectations for the ports and protocols it probes. The
// runners check the whole reachability matrix (every pair of pods, both ports, every
// protocol they can probe) against an independent evaluation of the API's semantics
// (Allows), and upstream's expectations (Check) where upstream states them.
package netpolmodel

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	// NamespaceNames are the model's namespaces.
	NamespaceNames = []string{"x", "y", "z"}
	// PodNames are the pods of each namespace.
	PodNames = []string{"a", "b", "c"}
	// Ports are the ports every pod serves, over every protocol of Protocols.
	Ports = []int32{80, 81}
	// Protocols are the protocols of Ports.
	Protocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
)

// World is the objects of the cluster a case runs in: the namespaces by name, the pods by
// "ns/name" (PodKeys), the policies. A case's steps change it; a runner makes the cluster
// say the same.
type World struct {
	Namespaces map[string]*corev1.Namespace
	Pods       map[string]*corev1.Pod
	Policies   map[types.NamespacedName]*networkingv1.NetworkPolicy
}

// PodKeys are the pods' keys, "ns/name", in order.
func PodKeys() []string {
	var out []string
	for _, ns := range NamespaceNames {
		for _, n := range PodNames {
			out = append(out, ns+"/"+n)
		}
	}
	return out
}

// PortName is the name of a pod's container port.
func PortName(port int32, proto corev1.Protocol) string {
	return fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto)))
}

// Pod is a model pod as the API holds it, labelled pod=<name>, with a container serving
// every port of Ports over every protocol of Protocols; node and ip are where it runs
// (ip "": not yet known).
func Pod(key, node, ip string) *corev1.Pod {
	ns, name, _ := strings.Cut(key, "/")
	c := corev1.Container{Name: "c"}
	for _, port := range Ports {
		for _, proto := range Protocols {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: PortName(port, proto), Protocol: proto, ContainerPort: port})
		}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name + "-uid"), Labels: map[string]string{"pod": name}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{c}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

// Namespace is a model namespace as the API holds it.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name, "ns": name}}}
}

// NewWorld is the model's namespaces and pods, without policies; place says where each pod
// runs (its node and address).
func NewWorld(place func(key string) (node, ip string)) *World {
	w := &World{Namespaces: map[string]*corev1.Namespace{}, Pods: map[string]*corev1.Pod{},
		Policies: map[types.NamespacedName]*networkingv1.NetworkPolicy{}}
	for _, ns := range NamespaceNames {
		w.Namespaces[ns] = Namespace(ns)
	}
	for _, key := range PodKeys() {
		node, ip := place(key)
		w.Pods[key] = Pod(key, node, ip)
	}
	return w
}

// Clone is a copy of the world whose maps can change without changing w's (the objects are
// shared: steps replace them, never change them in place).
func (w *World) Clone() *World {
	return &World{Namespaces: maps.Clone(w.Namespaces), Pods: maps.Clone(w.Pods), Policies: maps.Clone(w.Policies)}
}

func (w *World) ip(key string) string { return w.Pods[key].Status.PodIP }

func (w *World) createPolicy(ns string, np *networkingv1.NetworkPolicy) {
	np = np.DeepCopy()
	np.Namespace = ns
	w.Policies[types.NamespacedName{Namespace: ns, Name: np.Name}] = np
}

func (w *World) deletePolicies() {
	w.Policies = map[types.NamespacedName]*networkingv1.NetworkPolicy{}
}

func (w *World) addPodLabels(key string, l map[string]string) {
	p := w.Pods[key].DeepCopy()
	maps.Copy(p.Labels, l)
	w.Pods[key] = p
}

func (w *World) addNamespaceLabel(ns, k, v string) {
	o := w.Namespaces[ns].DeepCopy()
	o.Labels[k] = v
	w.Namespaces[ns] = o
}

// Upstream's policy builders, in this package's words.

// genPolicy is a policy selecting pods by labels (nil: every pod) with the given parts.
func genPolicy(name string, podLabels map[string]string, parts ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podLabels != nil {
		np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: podLabels}
	}
	for _, p := range parts {
		p(np)
	}
	return np
}

// ingressRules sets ingress rules and declares the Ingress type (upstream's SetSpecIngressRules).
func ingressRules(rules ...networkingv1.NetworkPolicyIngressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		if np.Spec.Ingress == nil {
			np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		}
		np.Spec.Ingress = append(np.Spec.Ingress, rules...)
	}
}

// egressRules is the same for egress.
func egressRules(rules ...networkingv1.NetworkPolicyEgressRule) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		if np.Spec.Egress == nil {
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{}
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
		np.Spec.Egress = append(np.Spec.Egress, rules...)
	}
}

func from(peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: peers}
}

func to(peers ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: peers}
}

func ingressPorts(ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{Ports: ports}
}

func egressPorts(ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{Ports: ports}
}

func ml(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func lsel(kv ...string) *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: ml(kv...)} }

// numPort is a numbered port (protocol nil: unset).
func numPort(p int32, proto *corev1.Protocol) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Port: &v, Protocol: proto}
}

func strPort(name string, proto *corev1.Protocol) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &v, Protocol: proto}
}

var (
	pTCP  = protoPtr(corev1.ProtocolTCP)
	pUDP  = protoPtr(corev1.ProtocolUDP)
	pSCTP = protoPtr(corev1.ProtocolSCTP)
)

// Reachability is the expected connectivity between every pair of pods, as upstream's
// Reachability.
type Reachability struct {
	// Expected says, by [from, to] pod keys, whether a connection is allowed.
	Expected map[[2]string]bool
}

func NewReachability(def bool) *Reachability {
	r := &Reachability{Expected: map[[2]string]bool{}}
	for _, a := range PodKeys() {
		for _, b := range PodKeys() {
			r.Expected[[2]string{a, b}] = def
		}
	}
	return r
}

// peer matches pods: by namespace, by pod name, both, or (zero) every pod.
type peer struct{ ns, pod string }

func (p peer) matches(key string) bool {
	ns, name, _ := strings.Cut(key, "/")
	return (p.ns == "" || p.ns == ns) && (p.pod == "" || p.pod == name)
}

func (r *Reachability) expect(from, to string, ok bool) { r.Expected[[2]string{from, to}] = ok }

func (r *Reachability) expectPeer(from, to peer, ok bool) {
	for k := range r.Expected {
		if from.matches(k[0]) && to.matches(k[1]) {
			r.Expected[k] = ok
		}
	}
}

func (r *Reachability) expectAllIngress(to string, ok bool) { r.expectPeer(peer{}, keyPeer(to), ok) }
func (r *Reachability) expectAllEgress(from string, ok bool) {
	r.expectPeer(keyPeer(from), peer{}, ok)
}

func keyPeer(key string) peer {
	ns, name, _ := strings.Cut(key, "/")
	return peer{ns, name}
}

// Check is one of upstream's validations: a port, a protocol and what to expect.
type Check struct {
	Port  int32
	Proto corev1.Protocol
	Want  func(w *World) *Reachability
}

// Step is changes to the world, then validations.
type Step struct {
	Do     func(w *World)
	Checks []Check
}

// Case is one of upstream's cases.
type Case struct {
	// Context is upstream's: TCP ("NetworkPolicy between server and client"), UDP, SCTP.
	Context corev1.Protocol
	Name    string
	Steps   []Step
}

// FullName is the case's name under its context's.
func (c Case) FullName() string { return string(c.Context) + "/" + c.Name }

func check(port int32, proto corev1.Protocol, want func(w *World) *Reachability) Check {
	return Check{Port: port, Proto: proto, Want: want}
}

func allTrue(*World) *Reachability { return NewReachability(true) }

// Cases is every case of upstream's network_policy.go.
func Cases() []Case {
	tcp, udp, sctp := corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP
	one := func(do func(w *World), checks ...Check) []Step { return []Step{{Do: do, Checks: checks}} }
	nsY := func(k string) *metav1.LabelSelector { return lsel(k, "y") }
	defaultDenyIngress := func(proto corev1.Protocol) Case {
		return Case{proto, "should support a 'default-deny-ingress' policy", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-ingress", nil, ingressRules()))
		}, check(80, proto, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{}, peer{ns: "x"}, false)
			return r
		}))}
	}
	portsFromY := func(proto corev1.Protocol) Case {
		return Case{proto, "should enforce policy based on Ports", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-port-81", ml("pod", "a"), ingressRules(networkingv1.NetworkPolicyIngressRule{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsY(namespaceLabelKey)}}, Ports: []networkingv1.NetworkPolicyPort{numPort(81, &proto)}})))
		}, check(81, proto, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
			return r
		}))}
	}
	podAndNS := func(proto corev1.Protocol) Case {
		return Case{proto, "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-pod-a", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: nsY(namespaceLabelKey), PodSelector: lsel("pod", "a")}))))
		}, check(80, proto, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("y/a", "x/a", true)
			return r
		}))}
	}
	cidrExcept := func(w *World) *networkingv1.NetworkPolicy {
		return genPolicy("allow-client-a-via-cidr-egress-rule", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{
			CIDR: largeCIDR(w.ip("x/b")), Except: []string{w.ip("x/b") + "/32"}}})))
	}
	return []Case{
		defaultDenyIngress(tcp),
		{tcp, "should support a 'default-deny-all' policy", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-all", nil, ingressRules(), egressRules()))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{}, peer{ns: "x"}, false)
			r.expectPeer(peer{ns: "x"}, peer{}, false)
			return r
		}))},
		{tcp, "should enforce policy to allow traffic from pods within server namespace based on PodSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("x-a-allows-x-b", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "b")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("x/b", "x/a", true)
			return r
		}))},
		{tcp, "should enforce policy to allow ingress traffic for a target", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-all", nil, ingressRules()))
			w.createPolicy("x", genPolicy("allow-all-to-a", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}, NamespaceSelector: &metav1.LabelSelector{}}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", true)
			r.expectAllIngress("x/b", false)
			r.expectAllIngress("x/c", false)
			return r
		}))},
		{tcp, "should enforce policy to allow ingress traffic from pods in all namespaces", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-from-another-ns", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{}}}))))
		}, check(80, tcp, allTrue))},
		{tcp, "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: nsY(namespaceLabelKey)}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
			return r
		}))},
		{tcp, "should enforce policy based on PodSelector with MatchExpressions", one(func(w *World) {
			w.createPolicy("x", genPolicy("x-a-allows-x-b", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: exprSelector("pod", metav1.LabelSelectorOpIn, "b")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("x/b", "x/a", true)
			return r
		}))},
		{tcp, "should enforce policy based on NamespaceSelector with MatchExpressions", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-match-selector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: exprSelector(namespaceLabelKey, metav1.LabelSelectorOpIn, "y")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
			return r
		}))},
		{tcp, "should enforce policy based on PodSelector or NamespaceSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-match-selector", ml("pod", "a"), ingressRules(from(
				networkingv1.NetworkPolicyPeer{NamespaceSelector: exprSelector(namespaceLabelKey, metav1.LabelSelectorOpNotIn, "x")},
				networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "b")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expect("x/a", "x/a", false)
			r.expect("x/c", "x/a", false)
			return r
		}))},
		{tcp, "should enforce policy based on PodSelector and NamespaceSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-podselector-and-nsselector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{
				NamespaceSelector: exprSelector(namespaceLabelKey, metav1.LabelSelectorOpNotIn, "x"), PodSelector: lsel("pod", "b")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("y/b", "x/a", true)
			r.expect("z/b", "x/a", true)
			return r
		}))},
		{tcp, "should enforce policy based on Multiple PodSelectors and NamespaceSelectors", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-z-pod-b-c", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{
				NamespaceSelector: exprSelector(namespaceLabelKey, metav1.LabelSelectorOpNotIn, "x"), PodSelector: exprSelector("pod", metav1.LabelSelectorOpIn, "b", "c")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expect("y/a", "x/a", false)
			r.expect("z/a", "x/a", false) // upstream's full model; its reduced one has no z/a
			return r
		}))},
		{tcp, "should enforce policy based on any PodSelectors", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-x-pod-b-c", ml("pod", "a"), ingressRules(from(
				networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "b")}, networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "c")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("x/b", "x/a", true)
			r.expect("x/c", "x/a", true)
			return r
		}))},
		podAndNS(tcp),
		portsFromY(tcp),
		{tcp, "should enforce multiple, stacked policies with overlapping podSelectors", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector", ml("pod", "a"), ingressRules(networkingv1.NetworkPolicyIngressRule{
					From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsY(namespaceLabelKey)}}, Ports: []networkingv1.NetworkPolicyPort{numPort(81, pTCP)}})))
			}, Checks: []Check{
				check(81, tcp, func(*World) *Reachability {
					r := NewReachability(true)
					r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
					r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
					return r
				}),
				check(80, tcp, func(*World) *Reachability {
					r := NewReachability(true)
					r.expectAllIngress("x/a", false)
					return r
				}),
			}},
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector-80", ml("pod", "a"), ingressRules(networkingv1.NetworkPolicyIngressRule{
					From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsY(namespaceLabelKey)}}, Ports: []networkingv1.NetworkPolicyPort{numPort(80, pTCP)}})))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
				r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
				return r
			})}},
		}},
		{tcp, "should support allow-all policy", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-all", map[string]string{}, ingressRules(networkingv1.NetworkPolicyIngressRule{})))
		}, check(80, tcp, allTrue), check(81, tcp, allTrue))},
		{tcp, "should allow ingress access on one named port", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-all", map[string]string{}, ingressRules(ingressPorts(strPort("serve-81-tcp", nil)))))
		}, check(81, tcp, allTrue), check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{}, peer{ns: "x"}, false)
			return r
		}))},
		{tcp, "should allow ingress access from namespace on one named port", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector-80", ml("pod", "a"), ingressRules(networkingv1.NetworkPolicyIngressRule{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsY(namespaceLabelKey)}}, Ports: []networkingv1.NetworkPolicyPort{strPort("serve-80-tcp", pTCP)}})))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
			return r
		}), check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			return r
		}))},
		{tcp, "should allow egress access on one named port", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-egress", map[string]string{}, egressRules(egressPorts(strPort("serve-80-tcp", nil)))))
		}, check(80, tcp, allTrue), check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{}, false)
			return r
		}))},
		{tcp, "should enforce updated policy", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-all-mutate-to-deny-all", map[string]string{}, ingressRules(networkingv1.NetworkPolicyIngressRule{})))
			}, Checks: []Check{check(81, tcp, allTrue)}},
			{Do: func(w *World) {
				np := w.Policies[types.NamespacedName{Namespace: "x", Name: "allow-all-mutate-to-deny-all"}].DeepCopy()
				np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{}
				w.createPolicy("x", np)
			}, Checks: []Check{check(81, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectPeer(peer{}, peer{ns: "x"}, false)
				return r
			})}},
		}},
		{tcp, "should allow ingress access from updated namespace", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: lsel("ns2", "updated")}))))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				return r
			})}},
			{Do: func(w *World) { w.addNamespaceLabel("y", "ns2", "updated") }, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				r.expectPeer(peer{ns: "y"}, peer{}, true)
				return r
			})}},
		}},
		{tcp, "should allow ingress access from updated pod", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-client-a-via-pod-selector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "b", "pod2", "updated")}))))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				return r
			})}},
			{Do: func(w *World) { w.addPodLabels("x/b", ml("pod", "b", "pod2", "updated")) }, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				r.expect("x/b", "x/a", true)
				return r
			})}},
		}},
		{tcp, "should deny ingress from pods on other namespaces", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-empty-policy", nil, ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{}}}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "y"}, peer{ns: "x"}, false)
			r.expectPeer(peer{ns: "z"}, peer{ns: "x"}, false)
			return r
		}))},
		{tcp, "should deny ingress access to updated pod", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("deny-ingress-via-label-selector", ml("target", "isolated"), ingressRules()))
			}, Checks: []Check{check(80, tcp, allTrue)}},
			{Do: func(w *World) { w.addPodLabels("x/a", ml("target", "isolated")) }, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				return r
			})}},
		}},
		{tcp, "should deny egress from pods based on PodSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-egress-pod-a", ml("pod", "a"), egressRules()))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllEgress("x/a", false)
			return r
		}))},
		{tcp, "should deny egress from all pods in a namespace", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-egress-ns-x", nil, egressRules()))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{}, false)
			return r
		}))},
		{tcp, "should work with Ingress, Egress specified together", one(func(w *World) {
			np := genPolicy("allow-client-a-via-pod-selector", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{PodSelector: lsel("pod", "b")})))
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{egressPorts(numPort(80, nil))}
			np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress}
			w.createPolicy("x", np)
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expect("x/b", "x/a", true)
			return r
		}), check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			r.expectAllEgress("x/a", false)
			r.expect("x/b", "x/a", true)
			return r
		}))},
		{tcp, "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-to-ns-y-pod-a", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{NamespaceSelector: nsY(namespaceLabelKey), PodSelector: lsel("pod", "a")}))))
			in := from(networkingv1.NetworkPolicyPeer{NamespaceSelector: lsel(namespaceLabelKey, "x"), PodSelector: lsel("pod", "a")})
			w.createPolicy("y", genPolicy("allow-from-xa-on-ya-match-selector", ml("pod", "a"), ingressRules(in)))
			w.createPolicy("y", genPolicy("allow-from-xa-on-yb-match-selector", ml("pod", "b"), ingressRules(in)))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{"x", "a"}, peer{}, false)
			r.expectPeer(peer{}, peer{"y", "a"}, false)
			r.expectPeer(peer{"x", "a"}, peer{"y", "a"}, true)
			r.expectPeer(peer{}, peer{"y", "b"}, false)
			return r
		}))},
		{tcp, "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-to-ns-y-pod-a", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{NamespaceSelector: nsY(namespaceLabelKey), PodSelector: lsel("pod", "a")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllEgress("x/a", false)
			r.expect("x/a", "y/a", true)
			return r
		}))},
		{tcp, "should enforce ingress policy allowing any port traffic to a server on a specific protocol", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ingress-by-proto", ml("pod", "a"), ingressRules(ingressPorts(networkingv1.NetworkPolicyPort{Protocol: pTCP}))))
		}, check(80, tcp, allTrue), check(80, udp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{}, peer{"x", "a"}, false)
			return r
		}))},
		{tcp, "should enforce multiple ingress policies with ingress allow-all policy taking precedence", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-ingress-port-80", map[string]string{}, ingressRules(ingressPorts(numPort(80, nil)))))
			}, Checks: []Check{check(81, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectPeer(peer{}, peer{ns: "x"}, false)
				return r
			})}},
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-ingress", map[string]string{}, ingressRules(networkingv1.NetworkPolicyIngressRule{})))
			}, Checks: []Check{check(81, tcp, allTrue)}},
		}},
		{tcp, "should enforce multiple egress policies with egress allow-all policy taking precedence", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-egress-port-80", map[string]string{}, egressRules(egressPorts(numPort(80, nil)))))
			}, Checks: []Check{check(81, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectPeer(peer{ns: "x"}, peer{}, false)
				return r
			})}},
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-egress", map[string]string{}, egressRules(networkingv1.NetworkPolicyEgressRule{})))
			}, Checks: []Check{check(81, tcp, allTrue)}},
		}},
		{tcp, "should stop enforcing policies after they are deleted", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("deny-all", nil, ingressRules(), egressRules()))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectPeer(peer{ns: "x"}, peer{}, false)
				r.expectPeer(peer{}, peer{ns: "x"}, false)
				return r
			})}},
			{Do: func(w *World) { w.deletePolicies() }, Checks: []Check{check(80, tcp, allTrue)}},
		}},
		{tcp, "should allow egress access to server in CIDR block", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-client-a-via-cidr-egress-rule", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: w.ip("y/b") + "/32"}}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllEgress("x/a", false)
			r.expect("x/a", "y/b", true)
			return r
		}))},
		{tcp, "should enforce except clause while egress access to server in CIDR block", one(func(w *World) {
			w.createPolicy("x", cidrExcept(w))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expect("x/a", "x/b", false)
			return r
		}))},
		{tcp, "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", []Step{
			{Do: func(w *World) { w.createPolicy("x", cidrExcept(w)) }, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expect("x/a", "x/b", false)
				return r
			})}},
			{Do: func(w *World) {
				// Upstream updates the policy of the same name: the /32 replaces the block.
				w.createPolicy("x", genPolicy("allow-client-a-via-cidr-egress-rule", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: w.ip("x/b") + "/32"}}))))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllEgress("x/a", false)
				r.expect("x/a", "x/b", true)
				return r
			})}},
		}},
		{tcp, "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", []Step{
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("allow-egress-for-target", ml("pod", "a"), egressRules(networkingv1.NetworkPolicyEgressRule{})))
			}, Checks: []Check{check(80, tcp, allTrue)}},
			{Do: func(w *World) {
				w.createPolicy("x", genPolicy("deny-ingress-via-label-selector", ml("pod", "a"), ingressRules()))
			}, Checks: []Check{check(80, tcp, func(*World) *Reachability {
				r := NewReachability(true)
				r.expectAllIngress("x/a", false)
				return r
			})}},
		}},
		{tcp, "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", one(func(w *World) {
			w.createPolicy("x", genPolicy("deny-ingress", nil, ingressRules()))
			w.createPolicy("x", genPolicy("allow-only-sctp-ingress-on-port-81", ml("pod", "a"), ingressRules(ingressPorts(numPort(81, pSCTP)))))
		}, check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{}, peer{ns: "x"}, false)
			return r
		}))},
		{tcp, "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-only-sctp-ingress-on-port-80", ml("pod", "a"), ingressRules(ingressPorts(numPort(80, pSCTP)))))
		}, check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			return r
		}))},
		{tcp, "should not allow access by TCP when a policy specifies only UDP", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-only-udp-ingress-on-port-81", ml("pod", "a"), ingressRules(ingressPorts(numPort(81, pUDP)))))
		}, check(81, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectAllIngress("x/a", false)
			return r
		}))},
		{tcp, "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-client-a-via-ns-selector-for-immutable-ns-label", ml("pod", "a"), ingressRules(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: lsel(corev1.LabelMetadataName, "y")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{ns: "x"}, peer{"x", "a"}, false)
			r.expectPeer(peer{ns: "z"}, peer{"x", "a"}, false)
			return r
		}))},
		{tcp, "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label", one(func(w *World) {
			w.createPolicy("x", genPolicy("allow-ns-y-match-selector-for-immutable-ns-label", ml("pod", "a"), egressRules(to(networkingv1.NetworkPolicyPeer{NamespaceSelector: exprSelector(corev1.LabelMetadataName, metav1.LabelSelectorOpNotIn, "y")}))))
		}, check(80, tcp, func(*World) *Reachability {
			r := NewReachability(true)
			r.expectPeer(peer{"x", "a"}, peer{ns: "y"}, false)
			return r
		}))},
		defaultDenyIngress(udp), portsFromY(udp), podAndNS(udp),
		defaultDenyIngress(sctp), portsFromY(sctp), podAndNS(sctp),
	}
}

// namespaceLabelKey is the label upstream's namespaces are selected by.
const namespaceLabelKey = "kubernetes.io/metadata.name"

// largeCIDR is the /4 holding an address (upstream's makeLargeCIDRForIP).
func largeCIDR(ip string) string {
	return netip.PrefixFrom(netip.MustParseAddr(ip), 4).Masked().String()
}

// Allows says, straight from the API's definition and without the engine, whether a
// connection from one pod to another (the destination's port and protocol) is allowed: the
// source's egress and the destination's ingress must both allow it.
func Allows(w *World, src, dst *corev1.Pod, proto corev1.Protocol, port int32) bool {
	return oracleDirection(w, src, dst, dst, proto, port, networkingv1.PolicyTypeEgress) &&
		oracleDirection(w, dst, src, dst, proto, port, networkingv1.PolicyTypeIngress)
}

// oracleDirection: may the subject pod talk with the peer pod in this direction (named ports
// resolve on dst)? A pod no policy selects for the direction is not isolated in it.
func oracleDirection(w *World, subject, other, dst *corev1.Pod, proto corev1.Protocol, port int32, dir networkingv1.PolicyType) bool {
	isolated := false
	for _, np := range w.Policies {
		if np.Namespace != subject.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(subject.Labels)) {
			continue
		}
		types := np.Spec.PolicyTypes
		if len(types) == 0 {
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		if !slices.Contains(types, dir) {
			continue
		}
		isolated = true
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if oraclePeers(w, np, r.From, other) && oraclePorts(r.Ports, dst, proto, port) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if oraclePeers(w, np, r.To, other) && oraclePorts(r.Ports, dst, proto, port) {
					return true
				}
			}
		}
	}
	return !isolated
}

func oraclePeers(w *World, np *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, p *corev1.Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			ip := netip.MustParseAddr(p.Status.PodIP)
			in := netip.MustParsePrefix(peer.IPBlock.CIDR).Contains(ip)
			for _, e := range peer.IPBlock.Except {
				if netip.MustParsePrefix(e).Contains(ip) {
					in = false
				}
			}
			if in {
				return true
			}
			continue
		}
		nsOK := p.Namespace == np.Namespace
		if peer.NamespaceSelector != nil {
			s, _ := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			nsOK = s.Matches(labels.Set(w.Namespaces[p.Namespace].Labels))
		}
		podOK := true
		if peer.PodSelector != nil {
			s, _ := metav1.LabelSelectorAsSelector(peer.PodSelector)
			podOK = s.Matches(labels.Set(p.Labels))
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func oraclePorts(ports []networkingv1.NetworkPolicyPort, dst *corev1.Pod, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		want := corev1.ProtocolTCP
		if pp.Protocol != nil {
			want = *pp.Protocol
		}
		if want != proto {
			continue
		}
		switch {
		case pp.Port == nil:
			return true
		case pp.Port.Type == intstr.Int:
			if pp.Port.IntVal == port || (pp.EndPort != nil && pp.Port.IntVal <= port && port <= *pp.EndPort) {
				return true
			}
		default:
			for _, c := range dst.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == pp.Port.StrVal && cp.Protocol == proto && cp.ContainerPort == port {
						return true
					}
				}
			}
		}
	}
	return false
}

func protoPtr(p corev1.Protocol) *corev1.Protocol { return &p }

func exprSelector(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// Matrix is connectivity for one port and protocol, by [from, to] pod keys.
type Matrix map[[2]string]bool

// Expect is the matrix the API's semantics say (Allows) for a port and protocol; a pod to
// itself is left out (upstream ignores loopback).
func (w *World) Expect(port int32, proto corev1.Protocol) Matrix {
	out := Matrix{}
	for _, src := range PodKeys() {
		for _, dst := range PodKeys() {
			if src != dst {
				out[[2]string{src, dst}] = Allows(w, w.Pods[src], w.Pods[dst], proto, port)
			}
		}
	}
	return out
}

// Differ says whether got and want disagree on any pair got holds.
func Differ(got, want Matrix) bool {
	for k, v := range got {
		if v != want[k] {
			return true
		}
	}
	return false
}

// TruthTable prints a matrix as upstream does: rows are sources, columns destinations;
// "." connected, "X" not, "*" marks a cell that differs from want.
func TruthTable(got, want Matrix) string {
	var b strings.Builder
	keys := PodKeys()
	b.WriteString("      ")
	for _, d := range keys {
		fmt.Fprintf(&b, "%-4s", d)
	}
	b.WriteByte('\n')
	for _, s := range keys {
		fmt.Fprintf(&b, "%-6s", s)
		for _, d := range keys {
			if s == d {
				b.WriteString("-   ")
				continue
			}
			k := [2]string{s, d}
			c := "."
			if !got[k] {
				c = "X"
			}
			if got[k] != want[k] {
				c += "*"
			}
			fmt.Fprintf(&b, "%-4s", c)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

package netpol

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Builders of test objects.

func namespace(name string, kv ...string) *corev1.Namespace {
	l := map[string]string{corev1.LabelMetadataName: name}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

type podOpt func(*corev1.Pod)

// testPod is a running pod on node with one address and labels "k=v,...".
func testPod(ns, name, node, ip, lbls string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name + "-uid"), Labels: parseLabels(lbls),
			CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000, 0))},
		Spec:   corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// containerPort adds a named container port.
func containerPort(name string, proto corev1.Protocol, port int32) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: name, Protocol: proto, ContainerPort: port})
	}
}

func hostNetwork() podOpt { return func(p *corev1.Pod) { p.Spec.HostNetwork = true } }

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

type polOpt func(*networkingv1.NetworkPolicy)

// netpol is a NetworkPolicy selecting "k=v,..." ("" selects every pod of ns).
func netpol(ns, name, sel string, opts ...polOpt) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if sel != "" {
		np.Spec.PodSelector.MatchLabels = parseLabels(sel)
	}
	for _, o := range opts {
		o(np)
	}
	return np
}

func types_(t ...networkingv1.PolicyType) polOpt {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = t }
}

var (
	typeIngress = networkingv1.PolicyTypeIngress
	typeEgress  = networkingv1.PolicyTypeEgress
)

// denyIngress declares Ingress without rules; denyEgress the same for egress.
func denyIngress() polOpt { return types_(typeIngress) }

func ingressRule(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) polOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

func egressRule(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) polOpt {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	}
}

func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

// selector is a label selector from "k=v,..." ("" selects everything); "k in (a,b)" style
// expressions go through exprSelector.
func selector_(s string) *metav1.LabelSelector {
	ls := &metav1.LabelSelector{}
	if s != "" {
		ls.MatchLabels = parseLabels(s)
	}
	return ls
}

func exprSelector(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func podPeer(sel string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: selector_(sel)}
}

func nsPeer(sel string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: selector_(sel)}
}

func nsPodPeer(nsSel, podSel string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: selector_(nsSel), PodSelector: selector_(podSel)}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func protoPtr(p corev1.Protocol) *corev1.Protocol { return &p }

func port(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: protoPtr(proto), Port: &v}
}

func portsRange(proto corev1.Protocol, lo, hi int32) networkingv1.NetworkPolicyPort {
	pp := port(proto, lo)
	pp.EndPort = ptr.To(hi)
	return pp
}

func namedPortOf(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	np := networkingv1.NetworkPolicyPort{Port: &v}
	if proto != "" {
		np.Protocol = protoPtr(proto)
	}
	return np
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: protoPtr(proto)}
}

// The test node.
const (
	testTable = "havre0-netpol"
	testNode  = "node-a"
)

var (
	testPodCIDR = netip.MustParsePrefix("10.42.0.0/24")
	testGateway = netip.MustParseAddr("10.42.0.1")
	testNodeIP  = netip.MustParseAddr("192.168.0.2")
)

func testEngineConfig() engineConfig {
	return engineConfig{table: testTable, node: testNode, podCIDR: testPodCIDR, gateway: testGateway, dns: testGateway}
}

// feed gives the engine objects as informers would.
func feed(e *engine, objs ...runtime.Object) {
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			e.setNamespace(o.Name, o)
		case *corev1.Pod:
			e.setInformerPod(o.Namespace+"/"+o.Name, o)
		case *networkingv1.NetworkPolicy:
			e.setPolicy(types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, o)
		default:
			panic(fmt.Sprintf("feed: %T", o))
		}
	}
}

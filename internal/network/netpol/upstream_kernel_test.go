package netpol

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/havre/havre/internal/network/netpol/netpolmodel"
)

// upstreamKernelCases are the cases of upstream's e2e tests run against the real kernel: a
// representative subset (the model test runs them all).
var upstreamKernelCases = []string{
	"TCP/should support a 'default-deny-all' policy",
	"TCP/should enforce policy based on PodSelector and NamespaceSelector",
	"TCP/should enforce policy based on Ports",
	"TCP/should allow ingress access on one named port",
	"TCP/should allow egress access on one named port",
	"TCP/should allow ingress access from updated namespace",
	"TCP/should deny ingress access to updated pod",
	"TCP/should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
	"TCP/should enforce except clause while egress access to server in CIDR block",
	"TCP/should stop enforcing policies after they are deleted",
	"UDP/should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
}

// TestUpstreamKernel runs a subset of upstream's e2e cases with nine pod namespaces on a
// bridge and the policer fed by a fake API: after every step, every pair of pods, ports 80
// and 81, TCP and UDP, a real connection gets through exactly when the API's semantics say
// (and upstream, where it says).
func TestUpstreamKernel(t *testing.T) {
	cases := map[string]netpolmodel.Case{}
	for _, c := range netpolmodel.Cases() {
		cases[c.FullName()] = c
	}
	for _, name := range upstreamKernelCases {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no upstream case %q", name)
		}
		t.Run(name, func(t *testing.T) {
			k := newKernelCluster(t)
			for i, step := range c.Steps {
				step.Do(k.w)
				k.propagate(t)
				k.verify(t, i, step.Checks)
			}
		})
	}
}

type kernelCluster struct {
	w    *netpolmodel.World
	tb   *testbed
	h    *harness
	prev map[string]runtime.Object // what the API holds, by kind and key
}

func newKernelCluster(t *testing.T) *kernelCluster {
	w := newE2EWorld(1)
	tb := newTestbed(t)
	var objs []runtime.Object
	for _, ns := range netpolmodel.NamespaceNames {
		objs = append(objs, w.Namespaces[ns])
	}
	var started []*corev1.Pod
	for _, key := range netpolmodel.PodKeys() {
		p := w.Pods[key]
		p.Spec.NodeName = testNode
		pp := tb.addPod(key, netip.MustParseAddr(p.Status.PodIP))
		pp.serve(t, 80, 81)
		objs = append(objs, p)
		started = append(started, p)
	}
	k := &kernelCluster{w: w, tb: tb, h: startPolicer(t, int(tb.node), fake.NewClientset(objs...), testConfig()), prev: map[string]runtime.Object{}}
	k.h.startPods(started...)
	for _, ns := range netpolmodel.NamespaceNames {
		k.prev["ns/"+ns] = w.Namespaces[ns]
	}
	for _, key := range netpolmodel.PodKeys() {
		k.prev["pod/"+key] = w.Pods[key]
	}
	return k
}

// propagate writes what changed in the world to the API and waits for the policer to have it.
func (k *kernelCluster) propagate(t *testing.T) {
	ctx := context.Background()
	c := k.h.client
	p := k.h.p
	var waits []storeWait
	cur := map[string]runtime.Object{}
	for name, ns := range k.w.Namespaces {
		cur["ns/"+name] = ns
	}
	for key, pod := range k.w.Pods {
		cur["pod/"+key] = pod
	}
	for key, np := range k.w.Policies {
		cur["policy/"+key.String()] = np
	}
	for id, obj := range cur {
		if k.prev[id] == obj {
			continue
		}
		var err error
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Update(ctx, o, metav1.UpdateOptions{})
			waits = append(waits, labelled(p.namespaces, o.Name, o.Labels))
		case *corev1.Pod:
			_, err = c.CoreV1().Pods(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
			waits = append(waits, labelled(p.pods, o.Namespace+"/"+o.Name, o.Labels))
		case *networkingv1.NetworkPolicy:
			if k.prev[id] == nil {
				_, err = c.NetworkingV1().NetworkPolicies(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			} else {
				_, err = c.NetworkingV1().NetworkPolicies(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
			}
			spec := o.Spec
			waits = append(waits, storeWait{p.policies, o.Namespace + "/" + o.Name, func(obj any, ok bool) bool {
				return ok && equalSpec(obj.(*networkingv1.NetworkPolicy).Spec, spec)
			}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for id, obj := range k.prev {
		if cur[id] != nil {
			continue
		}
		np := obj.(*networkingv1.NetworkPolicy)
		if err := c.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waits = append(waits, absent(p.policies, np.Namespace+"/"+np.Name))
	}
	k.prev = cur
	k.h.settle(waits...)
}

func equalSpec(a, b networkingv1.NetworkPolicySpec) bool { return equality.Semantic.DeepEqual(a, b) }

func (k *kernelCluster) verify(t *testing.T, step int, checks []netpolmodel.Check) {
	t.Helper()
	keys := netpolmodel.PodKeys()
	var probes []kprobe
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		for _, port := range netpolmodel.Ports {
			for _, src := range keys {
				for _, dst := range keys {
					if src == dst {
						continue
					}
					want := netpolmodel.Allows(k.w, k.w.Pods[src], k.w.Pods[dst], proto, port)
					probes = append(probes, kprobe{src, dst, map[corev1.Protocol]string{corev1.ProtocolTCP: "tcp", corev1.ProtocolUDP: "udp"}[proto], uint16(port), want})
					for _, c := range checks {
						if c.Port == port && c.Proto == proto && c.Want(k.w).Expected[[2]string{src, dst}] != want {
							t.Errorf("step %d, %d/%s, %s → %s: upstream expects %v, the API's semantics say %v", step, port, proto, src, dst, !want, want)
						}
					}
				}
			}
		}
	}
	k.tb.run(t, fmt.Sprintf("step %d", step), probes...)
}

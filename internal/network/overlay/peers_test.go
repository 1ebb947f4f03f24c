package overlay

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestVTEPMAC(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want string
	}{
		{"100.64.0.10", "02:48:64:40:00:0a"},
		{"10.0.0.1", "02:48:0a:00:00:01"},
		{"255.255.255.255", "02:48:ff:ff:ff:ff"},
		{"::ffff:192.168.1.2", "02:48:c0:a8:01:02"},
	} {
		got := VTEPMAC(netip.MustParseAddr(tc.ip))
		if got.String() != tc.want {
			t.Errorf("VTEPMAC(%s) = %s, want %s", tc.ip, got, tc.want)
		}
		if got[0]&0x01 != 0 || got[0]&0x02 == 0 {
			t.Errorf("VTEPMAC(%s) = %s is not a locally administered unicast address", tc.ip, got)
		}
	}
	// Distinct addresses, distinct MACs.
	seen := map[string]string{}
	for _, ip := range []string{"10.0.0.1", "10.0.1.0", "10.1.0.0", "11.0.0.0", "1.0.0.10"} {
		m := VTEPMAC(netip.MustParseAddr(ip)).String()
		if other, ok := seen[m]; ok {
			t.Errorf("%s and %s share the MAC %s", ip, other, m)
		}
		seen[m] = ip
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"", ModeVXLAN, false},
		{"vxlan", ModeVXLAN, false},
		{"direct", ModeDirect, false},
		{"auto", ModeAuto, false},
		{"host-gw", "", true},
		{"VXLAN", "", true},
	} {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestConfigComplete(t *testing.T) {
	good := func() Config {
		return Config{Device: "havre0.vx", NodeName: "n0", NodeIP: netip.MustParseAddr("100.64.0.10"), PodCIDR: netip.MustParsePrefix("10.42.0.0/24")}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		err  string // substring; "" for no error
	}{
		{"defaults", func(*Config) {}, ""},
		{"no device", func(c *Config) { c.Device = "" }, "no VXLAN device"},
		{"long device", func(c *Config) { c.Device = "havre-bridge0.vx" }, "longer than 15"},
		{"no node name", func(c *Config) { c.NodeName = "" }, "no node name"},
		{"IPv6 node", func(c *Config) { c.NodeIP = netip.MustParseAddr("fd00::1") }, "IPv4 underlay"},
		{"IPv6 CIDR", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("fd00:42::/64") }, "only IPv4"},
		{"bad mode", func(c *Config) { c.Mode = "gre" }, "use vxlan, direct or auto"},
		{"VNI too big", func(c *Config) { c.VNI = 1 << 24 }, "VNI"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "UDP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.complete()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("complete: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("complete: %v, want an error with %q", err, tc.err)
			case tc.err == "":
				if c.VNI != DefaultVNI || c.Port != DefaultPort || c.Mode != ModeVXLAN || c.ResyncPeriod != DefaultResyncPeriod || c.Handle == nil || c.Clock == nil || c.Logger == nil {
					t.Fatalf("defaults not filled in: %+v", c)
				}
			}
		})
	}
}

// node is a Node with pod CIDRs and an InternalIP ("" for none).
func node(name, ip string, cidrs ...string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR = cidrs[0]
		n.Spec.PodCIDRs = cidrs
	}
	if ip != "" {
		n.Status.Addresses = []v1.NodeAddress{
			{Type: v1.NodeHostName, Address: name},
			{Type: v1.NodeInternalIP, Address: ip},
		}
	}
	return n
}

func TestPeersFrom(t *testing.T) {
	me := self{name: "n0", nodeIP: netip.MustParseAddr("100.64.0.10"), podCIDR: netip.MustParsePrefix("10.42.0.0/24"),
		mode: ModeVXLAN, segment: netip.MustParsePrefix("100.64.0.0/24")}
	type want struct {
		name, ip string
		cidrs    []string
		direct   bool
	}
	for _, tc := range []struct {
		name     string
		mode     Mode
		nodes    []*v1.Node
		want     []want
		problems []string // substrings, in order
	}{
		{
			name:  "self is no peer; sorted by name",
			nodes: []*v1.Node{node("n2", "100.64.0.12", "10.42.2.0/24"), node("n0", "100.64.0.10", "10.42.0.0/24"), node("n1", "100.64.0.11", "10.42.1.0/24")},
			want:  []want{{"n1", "100.64.0.11", []string{"10.42.1.0/24"}, false}, {"n2", "100.64.0.12", []string{"10.42.2.0/24"}, false}},
		},
		{
			name: "nodes not yet allocated or without an InternalIP are no peers and no problem",
			nodes: []*v1.Node{node("n1", "100.64.0.11"), node("n2", "", "10.42.2.0/24"),
				{ObjectMeta: metav1.ObjectMeta{Name: "n3"}, Spec: v1.NodeSpec{PodCIDR: "10.42.3.0/24"},
					Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeExternalIP, Address: "203.0.113.3"}}}}},
		},
		{
			name: "spec.podCIDR alone; IPv6 CIDRs and addresses are skipped; the first IPv4 InternalIP",
			nodes: []*v1.Node{
				{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: v1.NodeSpec{PodCIDR: "10.42.1.0/24"},
					Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "fd00::11"}, {Type: v1.NodeInternalIP, Address: "100.64.0.11"}, {Type: v1.NodeInternalIP, Address: "100.64.0.111"}}}},
				node("n2", "100.64.0.12", "fd00:42:2::/64", "10.42.2.0/24", "10.42.20.0/24"),
				node("n3", "100.64.0.13", "not-a-cidr", "10.42.3.7/24"),
			},
			want: []want{{"n1", "100.64.0.11", []string{"10.42.1.0/24"}, false}, {"n2", "100.64.0.12", []string{"10.42.2.0/24", "10.42.20.0/24"}, false}, {"n3", "100.64.0.13", []string{"10.42.3.0/24"}, false}},
		},
		{
			name: "conflicts: the earlier name keeps what two claim",
			nodes: []*v1.Node{
				node("a", "100.64.0.20", "10.42.0.0/16"),                 // overlaps this node's
				node("b", "100.64.0.10", "10.42.9.0/24"),                 // this node's IP
				node("c", "100.64.0.21", "10.42.5.0/24"),                 // fine
				node("d", "100.64.0.22", "10.42.5.128/25"),               // overlaps c's
				node("e", "100.64.0.21", "10.42.6.0/24"),                 // c's IP
				node("f", "100.64.0.23", "100.64.0.0/24"),                // holds this node's IP
				node("g", "100.64.0.24", "10.42.7.0/24", "10.42.7.0/25"), // its own overlap
				node("h", "100.64.0.25", "10.40.0.0/14"),                 // holds c's (and this node's)
				node("i", "100.64.0.26", "10.42.4.0/23"),                 // holds c's
				node("j", "100.64.0.27", "10.42.5.0/24"),                 // c's exactly
			},
			want: []want{{"c", "100.64.0.21", []string{"10.42.5.0/24"}, false}},
			problems: []string{"node a: its pod CIDR 10.42.0.0/16 overlaps this node's", "node b has this node's IP", "node d: its pod CIDR 10.42.5.128/25 overlaps node c's",
				"node e has node c's IP", "node f: its pod CIDR 100.64.0.0/24 holds this node's IP", "node g: its pod CIDRs 10.42.7.0/24 and 10.42.7.0/25 overlap",
				"node h: its pod CIDR 10.40.0.0/14 overlaps", "node i: its pod CIDR 10.42.4.0/23 overlaps node c's 10.42.5.0/24", "node j: its pod CIDR 10.42.5.0/24 overlaps node c's 10.42.5.0/24"},
		},
		{
			name:     "direct: peers off the segment are problems",
			mode:     ModeDirect,
			nodes:    []*v1.Node{node("n1", "100.64.0.11", "10.42.1.0/24"), node("far", "100.65.0.11", "10.42.9.0/24")},
			want:     []want{{"n1", "100.64.0.11", []string{"10.42.1.0/24"}, true}},
			problems: []string{"node far: its IP 100.65.0.11 is not on this node's subnet 100.64.0.0/24"},
		},
		{
			name:  "auto: direct on the segment, vxlan off it",
			mode:  ModeAuto,
			nodes: []*v1.Node{node("n1", "100.64.0.11", "10.42.1.0/24"), node("far", "100.65.0.11", "10.42.9.0/24")},
			want:  []want{{"far", "100.65.0.11", []string{"10.42.9.0/24"}, false}, {"n1", "100.64.0.11", []string{"10.42.1.0/24"}, true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := me
			if tc.mode != "" {
				m.mode = tc.mode
			}
			peers, problems := peersFrom(tc.nodes, m)
			var got []want
			for _, p := range peers {
				w := want{name: p.name, ip: p.nodeIP.String(), direct: p.direct}
				for _, c := range p.podCIDRs {
					w.cidrs = append(w.cidrs, c.String())
				}
				got = append(got, w)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b want) bool {
				return a.name == b.name && a.ip == b.ip && a.direct == b.direct && slices.Equal(a.cidrs, b.cidrs)
			}) {
				t.Errorf("peers = %+v\nwant    %+v", got, tc.want)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems = %q, want %d like %q", problems, len(tc.problems), tc.problems)
			}
			for i, p := range problems {
				if !strings.Contains(p, tc.problems[i]) {
					t.Errorf("problem %d = %q, want it to say %q", i, p, tc.problems[i])
				}
			}
		})
	}
}

func TestRouteChanged(t *testing.T) {
	base := node("n1", "100.64.0.11", "10.42.1.0/24")
	for _, tc := range []struct {
		name string
		edit func(*v1.Node)
		want bool
	}{
		{"heartbeat", func(n *v1.Node) {
			n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
			n.ResourceVersion = "7"
		}, false},
		{"labels", func(n *v1.Node) { n.Labels = map[string]string{"a": "b"} }, false},
		{"pod CIDR", func(n *v1.Node) { n.Spec.PodCIDRs = []string{"10.42.9.0/24"} }, true},
		{"InternalIP", func(n *v1.Node) { n.Status.Addresses[1].Address = "100.64.0.99" }, true},
		{"ExternalIP added", func(n *v1.Node) {
			n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeExternalIP, Address: "203.0.113.1"})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.edit(cur)
			if got := routeChanged(base, cur); got != tc.want {
				t.Errorf("routeChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRoutable(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  any
		want bool
	}{
		{"peer", node("n1", "100.64.0.11", "10.42.1.0/24"), true},
		{"no pod CIDR yet", node("n1", "100.64.0.11"), false},
		{"no InternalIP", node("n1", "", "10.42.1.0/24"), false},
		{"IPv6 only", node("n1", "fd00::11", "fd00:42::/64"), false},
		{"deleted, last state unknown", cache.DeletedFinalStateUnknown{Key: "n1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := routable(tc.obj); got != tc.want {
				t.Errorf("routable = %v, want %v", got, tc.want)
			}
		})
	}
}

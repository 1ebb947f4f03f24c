package overlay

import (
	"net/netip"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

const (
	vxIdx = 5
	upIdx = 2
)

// vxRoute and directRoute are the routes want makes.
func vxRoute(dst, vtep string) route {
	return route{Dst: pfx(dst), Gw: addr(vtep), Link: vxIdx, OnLink: true, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST}
}

func directRoute(dst, gw string) route {
	return route{Dst: pfx(dst), Gw: addr(gw), Link: upIdx, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST}
}

func TestWant(t *testing.T) {
	l := links{vxlan: vxIdx, uplink: upIdx}
	for _, tc := range []struct {
		name  string
		peers []peer
		want  state
	}{
		{name: "no peers"},
		{
			name:  "vxlan peer",
			peers: []peer{{name: "n1", nodeIP: addr("100.64.0.11"), podCIDRs: []netip.Prefix{pfx("10.42.1.0/24")}}},
			want: state{
				routes: []route{vxRoute("10.42.1.0/24", "10.42.1.0")},
				neighs: []neigh{{IP: addr("10.42.1.0"), MAC: "02:48:64:40:00:0b", Permanent: true}},
				fdbs:   []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.11"), Permanent: true}},
			},
		},
		{
			name:  "two CIDRs: one VTEP (the first's network address), a route each",
			peers: []peer{{name: "n1", nodeIP: addr("100.64.0.11"), podCIDRs: []netip.Prefix{pfx("10.42.1.0/24"), pfx("10.42.101.0/24")}}},
			want: state{
				routes: []route{vxRoute("10.42.1.0/24", "10.42.1.0"), vxRoute("10.42.101.0/24", "10.42.1.0")},
				neighs: []neigh{{IP: addr("10.42.1.0"), MAC: "02:48:64:40:00:0b", Permanent: true}},
				fdbs:   []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.11"), Permanent: true}},
			},
		},
		{
			name: "direct peer: a route via its node IP on the uplink and nothing else",
			peers: []peer{
				{name: "n1", nodeIP: addr("100.64.0.11"), podCIDRs: []netip.Prefix{pfx("10.42.1.0/24")}, direct: true},
				{name: "n2", nodeIP: addr("100.65.0.12"), podCIDRs: []netip.Prefix{pfx("10.42.2.0/24")}},
			},
			want: state{
				routes: []route{directRoute("10.42.1.0/24", "100.64.0.11"), vxRoute("10.42.2.0/24", "10.42.2.0")},
				neighs: []neigh{{IP: addr("10.42.2.0"), MAC: "02:48:64:41:00:0c", Permanent: true}},
				fdbs:   []fdb{{MAC: "02:48:64:41:00:0c", Dst: addr("100.65.0.12"), Permanent: true}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := want(tc.peers, l); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("want(...) =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	n1 := state{
		routes: []route{vxRoute("10.42.1.0/24", "10.42.1.0")},
		neighs: []neigh{{IP: addr("10.42.1.0"), MAC: "02:48:64:40:00:0b", Permanent: true}},
		fdbs:   []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.11"), Permanent: true}},
	}
	foreignOnVX := route{Dst: pfx("192.0.2.0/24"), Link: vxIdx, Protocol: unix.RTPROT_BOOT, Table: unix.RT_TABLE_MAIN, Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST}
	for _, tc := range []struct {
		name       string
		want, have state
		plan       plan
	}{
		{name: "nothing", plan: plan{}},
		{name: "in place: nothing to write", want: n1, have: n1},
		{name: "new peer: bottom up", want: n1, plan: plan{setFDB: n1.fdbs, setNeigh: n1.neighs, setRoute: n1.routes}},
		{name: "peer gone: everything removed", have: n1, plan: plan{delRoute: n1.routes, delNeigh: n1.neighs, delFDB: n1.fdbs}},
		{
			name: "vxlan to direct: the route is replaced (same key), not deleted; neighbour and fdb go",
			want: state{routes: []route{directRoute("10.42.1.0/24", "100.64.0.11")}},
			have: n1,
			plan: plan{setRoute: []route{directRoute("10.42.1.0/24", "100.64.0.11")}, delNeigh: n1.neighs, delFDB: n1.fdbs},
		},
		{
			name: "damage: a route without onlink, a neighbour resolved by ARP, an fdb entry to the wrong node, one extra",
			want: n1,
			have: state{
				routes: []route{func() route { r := vxRoute("10.42.1.0/24", "10.42.1.0"); r.OnLink = false; return r }(), foreignOnVX},
				neighs: []neigh{{IP: addr("10.42.1.0"), MAC: "02:48:64:40:00:0b", Permanent: false}, {IP: addr("10.42.7.0"), MAC: "02:48:64:40:00:11"}},
				fdbs: []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.99"), Permanent: true},
					{MAC: "00:00:00:00:00:00", Dst: addr("100.64.0.11"), Permanent: true}},
			},
			plan: plan{
				setFDB: n1.fdbs, setNeigh: n1.neighs, setRoute: n1.routes,
				delRoute: []route{foreignOnVX},
				delNeigh: []neigh{{IP: addr("10.42.7.0"), MAC: "02:48:64:40:00:11"}},
				delFDB: []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.99"), Permanent: true},
					{MAC: "00:00:00:00:00:00", Dst: addr("100.64.0.11"), Permanent: true}},
			},
		},
		{
			name: "an fdb entry with the wanted destination but not permanent is set, never deleted",
			want: n1,
			have: state{routes: n1.routes, neighs: n1.neighs, fdbs: []fdb{{MAC: "02:48:64:40:00:0b", Dst: addr("100.64.0.11")}}},
			plan: plan{setFDB: n1.fdbs},
		},
		{
			name: "a second route with the wanted key (appended) is deleted once the wanted one is there",
			want: n1,
			have: state{routes: []route{vxRoute("10.42.1.0/24", "10.42.1.0"), directRoute("10.42.1.0/24", "100.64.0.11")}, neighs: n1.neighs, fdbs: n1.fdbs},
			plan: plan{delRoute: []route{directRoute("10.42.1.0/24", "100.64.0.11")}},
		},
		{
			name: "a route with the wanted key but other fields waits for the next round when the wanted one is written",
			want: n1,
			have: state{routes: []route{directRoute("10.42.1.0/24", "100.64.0.11"), directRoute("10.42.1.0/24", "100.64.0.12")}, neighs: n1.neighs, fdbs: n1.fdbs},
			plan: plan{setRoute: n1.routes},
		},
		{
			name: "a route of another metric is another key: deleted",
			want: n1,
			have: state{routes: []route{vxRoute("10.42.1.0/24", "10.42.1.0"), func() route { r := vxRoute("10.42.1.0/24", "10.42.1.0"); r.Priority = 100; return r }()}, neighs: n1.neighs, fdbs: n1.fdbs},
			plan: plan{delRoute: []route{func() route { r := vxRoute("10.42.1.0/24", "10.42.1.0"); r.Priority = 100; return r }()}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diff(tc.want, tc.have)
			if !reflect.DeepEqual(got, tc.plan) {
				t.Errorf("diff =\n%+v\nwant\n%+v", got, tc.plan)
			}
		})
	}
}

package apiserver

import "testing"

func TestServiceAllocator(t *testing.T) {
	a, err := newServiceAllocator(nil, "10.43.0.0/29", "30000-30002")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.kubernetesServiceIP(); got != "10.43.0.1" {
		t.Fatalf("kubernetes service IP %s", got)
	}
	// A /29 has 10.43.0.2-.6 to hand out: never the network, .1 or broadcast.
	used := map[string]bool{"10.43.0.1": true}
	var got []string
	for {
		ip, ok := a.freeIP(used)
		if !ok {
			break
		}
		used[ip] = true
		got = append(got, ip)
		if len(got) > 8 {
			t.Fatalf("allocator does not stop: %v", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("allocated %v, want the 5 addresses .2-.6", got)
	}
	for _, ip := range got {
		if ip == "10.43.0.0" || ip == "10.43.0.1" || ip == "10.43.0.7" {
			t.Errorf("allocated reserved address %s", ip)
		}
	}
	ports := map[int32]bool{30001: true}
	p1, _ := a.freePort(ports)
	ports[p1] = true
	p2, _ := a.freePort(ports)
	ports[p2] = true
	if _, ok := a.freePort(ports); ok || p1 == p2 || ports[30003] {
		t.Fatalf("ports %d %d, range should be exhausted", p1, p2)
	}
	for _, bad := range [][2]string{{"10.43.0.0", "30000-30001"}, {"fd00::/64", "30000-30001"}, {"10.43.0.0/16", "3-2"}, {"10.43.0.0/16", "x"}} {
		if _, err := newServiceAllocator(nil, bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

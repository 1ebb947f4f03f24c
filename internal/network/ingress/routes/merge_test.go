package routes

import "testing"

func TestMerge(t *testing.T) {
	a := &Table{Listeners: []*Listener{{Port: HTTPPort, Protocol: HTTP, Hosts: []*VirtualHost{
		{Hostname: "", Routes: []*Route{{Origin: Origin{Name: "a0"}}}},
		{Hostname: "x.example", Routes: []*Route{{Origin: Origin{Name: "a1"}}}},
	}}}}
	b := &Table{Listeners: []*Listener{
		{Port: HTTPPort, Protocol: HTTP, Hosts: []*VirtualHost{
			{Hostname: "X.example", RedirectToHTTPS: true, Routes: []*Route{{Origin: Origin{Name: "b1"}}}},
			{Hostname: "*.example", Routes: []*Route{{Origin: Origin{Name: "b2"}}}},
			{Hostname: "*.a.example", Routes: []*Route{{Origin: Origin{Name: "b3"}}}},
		}},
		{Port: HTTPSPort, Protocol: HTTPS},
	}}
	m := Merge(a, nil, b)
	if len(m.Listeners) != 2 || m.Listeners[0].Port != HTTPPort {
		t.Fatalf("listeners: %+v", m.Listeners)
	}
	var got []string
	for _, h := range m.Listeners[0].Hosts {
		got = append(got, h.Hostname)
	}
	want := []string{"x.example", "*.a.example", "*.example", ""}
	if len(got) != len(want) {
		t.Fatalf("hosts %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("hosts %q, want %q", got, want)
		}
	}
	x := m.Listeners[0].Hosts[0]
	if len(x.Routes) != 2 || x.Routes[0].Origin.Name != "a1" || x.Routes[1].Origin.Name != "b1" || !x.RedirectToHTTPS {
		t.Errorf("merged host: %+v", x)
	}
	if len(a.Listeners[0].Hosts[1].Routes) != 1 {
		t.Error("input modified")
	}
	one := &VirtualHost{Hostname: "*.b", WildcardOneLabel: true}
	if !one.Matches("a.b") || one.Matches("x.a.b") || one.Matches("b") {
		t.Error("one-label wildcard")
	}
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{{"", "a", true}, {"a.b", "a.b", true}, {"*.b", "a.b", true}, {"*.b", "x.a.b", true}, {"*.b", "b", false}, {"*.b", ".b", false}} {
		if MatchesHost(tc.pattern, tc.host) != tc.want {
			t.Errorf("MatchesHost(%q, %q) != %v", tc.pattern, tc.host, tc.want)
		}
	}
}

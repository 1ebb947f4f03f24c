package agent

import "testing"

func TestParseMeminfo(t *testing.T) {
	total, avail, err := parseMeminfo([]byte("MemTotal:       24684360 kB\nMemFree:        13650000 kB\nMemAvailable:   23646000 kB\n"))
	if err != nil || total != 24684360*1024 || avail != 23646000*1024 {
		t.Errorf("parseMeminfo = %d, %d, %v", total, avail, err)
	}
	if _, _, err := parseMeminfo([]byte("MemTotal: 1 kB\n")); err == nil {
		t.Error("meminfo without MemAvailable accepted")
	}
}

func TestParseOSRelease(t *testing.T) {
	for in, want := range map[string]string{
		"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n": "Debian GNU/Linux 12 (bookworm)",
		"PRETTY_NAME=Alpine\n": "Alpine",
		"NAME=x\n":             "",
	} {
		if got := parseOSRelease([]byte(in)); got != want {
			t.Errorf("parseOSRelease(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultRouteInterface(t *testing.T) {
	route := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	100	00000000	0	0	0
eth1	00000000	010200C0	0003	0	0	50	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	if got := defaultRouteInterface([]byte(route)); got != "eth1" {
		t.Errorf("defaultRouteInterface = %q, want eth1 (lowest metric)", got)
	}
	if got := defaultRouteInterface([]byte("Iface\tDestination\n")); got != "" {
		t.Errorf("no default route gave %q", got)
	}
}

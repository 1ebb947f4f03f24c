package podnet

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestConfList(t *testing.T) {
	for _, tc := range []struct {
		name string
		mtu  int
	}{{"default MTU", 0}, {"MTU set", 1450}} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := ConfList(netip.MustParsePrefix("10.42.3.0/24"), "/d/ipam", DefaultBridge, tc.mtu)
			if err != nil {
				t.Fatal(err)
			}
			var conf struct {
				CNIVersion string `json:"cniVersion"`
				Name       string
				Plugins    []struct {
					Type   string
					Bridge string
					MTU    int  `json:"mtu"`
					IPMasq bool `json:"ipMasq"`
					IPAM   struct {
						Type    string
						Ranges  [][]map[string]string
						DataDir string `json:"dataDir"`
					}
					Capabilities map[string]bool
				}
			}
			if err := json.Unmarshal(data, &conf); err != nil {
				t.Fatal(err)
			}
			if conf.Name != "havre" || len(conf.Plugins) != 2 {
				t.Fatalf("conf %s", data)
			}
			b := conf.Plugins[0]
			if b.Type != "bridge" || b.Bridge != "havre0" || b.IPMasq || b.IPAM.Type != "host-local" ||
				b.IPAM.Ranges[0][0]["subnet"] != "10.42.3.0/24" || b.IPAM.DataDir != "/d/ipam" || b.MTU != tc.mtu {
				t.Errorf("bridge plugin %+v", b)
			}
			if p := conf.Plugins[1]; p.Type != "portmap" || !p.Capabilities["portMappings"] {
				t.Errorf("portmap plugin %+v", p)
			}
		})
	}
	if _, err := ConfList(netip.Prefix{}, "/d", DefaultBridge, 0); err == nil {
		t.Error("an invalid CIDR was accepted")
	}
}

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	cidr := netip.MustParsePrefix("10.42.3.0/24")
	confDir, ipamDir := filepath.Join(dir, "net.d"), filepath.Join(dir, "ipam")
	wrote, err := WriteConfig(confDir, ipamDir, cidr, DefaultBridge, 0, false)
	if err != nil || !wrote {
		t.Fatalf("first write: %v, %v", wrote, err)
	}
	if wrote, err := WriteConfig(confDir, ipamDir, cidr, DefaultBridge, 0, false); err != nil || wrote {
		t.Fatalf("unchanged write: %v, %v", wrote, err)
	}
	if wrote, err := WriteConfig(confDir, ipamDir, cidr, DefaultBridge, 0, true); err != nil || !wrote {
		t.Fatalf("forced write: %v, %v", wrote, err)
	}
	if fi, err := os.Stat(filepath.Join(confDir, ConfName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("conf file: %v %v", fi, err)
	}
	if name, ok := ConfiguredBridge(confDir); !ok || name != DefaultBridge {
		t.Errorf("ConfiguredBridge = %q, %v, want %q", name, ok, DefaultBridge)
	}
	if _, ok := ConfiguredBridge(t.TempDir()); ok {
		t.Error("ConfiguredBridge found a bridge where nothing was written")
	}
}

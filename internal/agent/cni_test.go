package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestCNIConfList(t *testing.T) {
	data, err := cniConfList("10.42.3.0/24", "/d/ipam", defaultCNIBridge)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string
		Plugins    []struct {
			Type   string
			Bridge string
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
	if b.Type != "bridge" || b.Bridge != "havre0" || !b.IPMasq || b.IPAM.Type != "host-local" ||
		b.IPAM.Ranges[0][0]["subnet"] != "10.42.3.0/24" || b.IPAM.DataDir != "/d/ipam" {
		t.Errorf("bridge plugin %+v", b)
	}
	if p := conf.Plugins[1]; p.Type != "portmap" || !p.Capabilities["portMappings"] {
		t.Errorf("portmap plugin %+v", p)
	}
	if _, err := cniConfList("nope", "/d", defaultCNIBridge); err == nil {
		t.Error("a bad CIDR was accepted")
	}

	dir := t.TempDir()
	wrote, err := writeCNIConfig(filepath.Join(dir, "net.d"), filepath.Join(dir, "ipam"), "10.42.3.0/24", defaultCNIBridge, false)
	if err != nil || !wrote {
		t.Fatalf("first write: %v, %v", wrote, err)
	}
	if wrote, err := writeCNIConfig(filepath.Join(dir, "net.d"), filepath.Join(dir, "ipam"), "10.42.3.0/24", defaultCNIBridge, false); err != nil || wrote {
		t.Fatalf("unchanged write: %v, %v", wrote, err)
	}
	if wrote, err := writeCNIConfig(filepath.Join(dir, "net.d"), filepath.Join(dir, "ipam"), "10.42.3.0/24", defaultCNIBridge, true); err != nil || !wrote {
		t.Fatalf("forced write: %v, %v", wrote, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "net.d", cniConfName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("conf file: %v %v", fi, err)
	}
}

package podnet

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/havre/havre/internal/pki"
)

// The pod network: one bridge per node, host-local addresses from the
// node's pod CIDR, and host ports through portmap. Masquerading of traffic
// leaving the cluster is one rule of the node's (masquerade.go). containerd adds the loopback interface.
const (
	// NetworkName names the CNI network.
	NetworkName = "havre"
	// DefaultBridge is the pod bridge unless the agent is told another.
	DefaultBridge = "havre0"
	// ConfName is the CNI configuration file in the agent's conf dir.
	ConfName = "10-havre.conflist"
)

// ConfList renders the network configuration for a pod CIDR. mtu 0 leaves
// the plugin's default.
func ConfList(podCIDR netip.Prefix, ipamDir, bridge string, mtu int) ([]byte, error) {
	if !podCIDR.IsValid() {
		return nil, fmt.Errorf("pod CIDR %q is not valid", podCIDR)
	}
	route := "0.0.0.0/0"
	if podCIDR.Addr().Is6() {
		route = "::/0"
	}
	bridgePlugin := map[string]any{
		"type":      "bridge",
		"bridge":    bridge,
		"isGateway": true,
		// Masquerading is the node's (EnsureMasquerade), not per pod.
		"ipMasq":      false,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": podCIDR.Masked().String()}}},
			"routes":  []map[string]string{{"dst": route}},
			"dataDir": ipamDir,
		},
	}
	if mtu > 0 {
		bridgePlugin["mtu"] = mtu
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"plugins": []any{
			bridgePlugin,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// WriteConfig writes the network configuration into confDir unless it is
// already there unchanged (or force is set). It reports whether it wrote.
func WriteConfig(confDir, ipamDir string, podCIDR netip.Prefix, bridge string, mtu int, force bool) (bool, error) {
	data, err := ConfList(podCIDR, ipamDir, bridge, mtu)
	if err != nil {
		return false, err
	}
	path := filepath.Join(confDir, ConfName)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) && !force {
		return false, nil
	}
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		return false, err
	}
	if err := os.MkdirAll(ipamDir, 0o700); err != nil {
		return false, err
	}
	// Written to a temporary file in the directory and renamed: containerd
	// reloads on the rename (it ignores files created by a rename into the
	// directory, and its reload on the temporary file's writes fails
	// harmlessly).
	return true, pki.WriteFileAtomic(path, data, 0o600)
}

// ConfiguredBridge reads the bridge name from the CNI configuration in
// confDir: what a reset must remove (false if none was written).
func ConfiguredBridge(confDir string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(confDir, ConfName))
	if err != nil {
		return "", false
	}
	var conf struct {
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
		} `json:"plugins"`
	}
	if json.Unmarshal(data, &conf) != nil {
		return "", false
	}
	for _, p := range conf.Plugins {
		if p.Type == "bridge" && p.Bridge != "" {
			return p.Bridge, true
		}
	}
	return "", false
}

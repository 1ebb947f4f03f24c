package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/havre/havre/internal/pki"
)

// The pod network: one bridge per node, host-local addresses from the
// node's pod CIDR, masquerading of traffic leaving the cluster CIDR, and
// host ports through portmap. containerd adds the loopback interface.
const (
	cniNetworkName = "havre"
	// defaultCNIBridge is the pod bridge unless Options.CNIBridge names one.
	defaultCNIBridge = "havre0"
	cniConfName      = "10-havre.conflist"
)

// cniConfList renders the network configuration for a pod CIDR.
func cniConfList(podCIDR, ipamDir, bridge string) ([]byte, error) {
	_, n, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", podCIDR, err)
	}
	route := "0.0.0.0/0"
	if n.IP.To4() == nil {
		route = "::/0"
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       cniNetworkName,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.String()}}},
					"routes":  []map[string]string{{"dst": route}},
					"dataDir": ipamDir,
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// writeCNIConfig writes the network configuration into confDir unless it
// is already there unchanged (or force is set). It reports whether it
// wrote.
func writeCNIConfig(confDir, ipamDir, podCIDR, bridge string, force bool) (bool, error) {
	data, err := cniConfList(podCIDR, ipamDir, bridge)
	if err != nil {
		return false, err
	}
	path := filepath.Join(confDir, cniConfName)
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

// bridge is the name of the pods' bridge.
func (a *Agent) bridge() string {
	if a.opts.CNIBridge != "" {
		return a.opts.CNIBridge
	}
	return defaultCNIBridge
}

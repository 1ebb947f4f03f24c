package overlay

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/utils/clock"
)

// Mode is how packets reach another node's pods.
type Mode string

const (
	// ModeVXLAN encapsulates every peer's traffic in VXLAN (the default).
	ModeVXLAN Mode = "vxlan"
	// ModeDirect routes to every peer's node IP without encapsulation; a
	// peer off the uplink's subnet cannot be reached and is reported.
	ModeDirect Mode = "direct"
	// ModeAuto routes directly to peers on the uplink's subnet and
	// encapsulates the rest (flannel's DirectRouting).
	ModeAuto Mode = "auto"
)

// ParseMode reads a mode as a flag gives it ("" is ModeVXLAN).
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeVXLAN:
		return ModeVXLAN, nil
	case ModeDirect, ModeAuto:
		return Mode(s), nil
	}
	return "", fmt.Errorf("overlay mode %q: use vxlan, direct or auto", s)
}

// Defaults of Config (flannel's).
const (
	DefaultVNI          = 1
	DefaultPort         = 8472
	DefaultResyncPeriod = 30 * time.Second
)

// Overhead is what VXLAN over IPv4 adds to a packet: outer IPv4 (20), UDP
// (8), VXLAN (8) headers and the inner Ethernet header (14).
const Overhead = 50

// RouteProtocol marks the routes the overlay adds (the rtm_protocol of
// `ip route ... proto 72`), so that it finds its direct routes on the
// uplink again after a restart and Cleanup removes them. 72 is 'H', a
// number iproute2 reserves for no one.
const RouteProtocol = 72

// Config is what a node's overlay is built from.
type Config struct {
	// Device is the VXLAN device's name (at most 15 bytes), e.g. the
	// bridge's name + ".vx".
	Device   string
	NodeName string
	// NodeIP is this node's underlay address (IPv4): the interface holding
	// it is the uplink.
	NodeIP netip.Addr
	// PodCIDR is this node's pod CIDR (IPv4); its network address is the
	// node's VTEP address.
	PodCIDR netip.Prefix
	// Mode: ModeVXLAN ("" too), ModeDirect or ModeAuto.
	Mode Mode
	// VNI and Port of the VXLAN device; 0 means DefaultVNI, DefaultPort.
	// Every node of a cluster must use the same.
	VNI  int
	Port int
	// ResyncPeriod is how often the kernel is reconciled without a Node
	// change; 0 means DefaultResyncPeriod.
	ResyncPeriod time.Duration
	// Handle is the netlink handle of the network namespace to work in;
	// nil means the process's.
	Handle *netlink.Handle
	// Clock measures resyncs and retries (fake in tests); nil means the
	// real clock.
	Clock clock.Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// maxDeviceName is IFNAMSIZ less the terminating NUL.
const maxDeviceName = 15

func (c *Config) complete() error {
	switch {
	case c.Device == "":
		return fmt.Errorf("overlay: no VXLAN device name given")
	case len(c.Device) > maxDeviceName:
		return fmt.Errorf("overlay: device name %q is longer than %d bytes: use a shorter bridge name", c.Device, maxDeviceName)
	case c.NodeName == "":
		return fmt.Errorf("overlay: no node name given")
	case !c.NodeIP.Is4():
		return fmt.Errorf("overlay: node IP %q: only an IPv4 underlay is supported", c.NodeIP)
	case !c.PodCIDR.IsValid() || !c.PodCIDR.Addr().Is4():
		return fmt.Errorf("overlay: pod CIDR %q: only IPv4 is supported", c.PodCIDR)
	}
	c.PodCIDR = c.PodCIDR.Masked()
	mode, err := ParseMode(string(c.Mode))
	if err != nil {
		return err
	}
	c.Mode = mode
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.VNI < 1 || c.VNI >= 1<<24 {
		return fmt.Errorf("overlay: VNI %d is not in 1..16777215", c.VNI)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("overlay: UDP port %d is not in 1..65535", c.Port)
	}
	if c.ResyncPeriod <= 0 {
		c.ResyncPeriod = DefaultResyncPeriod
	}
	if c.Handle == nil {
		c.Handle = &netlink.Handle{}
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

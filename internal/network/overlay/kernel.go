package overlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// uplink is the interface holding the node IP.
type uplink struct {
	index   int
	name    string
	mtu     int
	segment netip.Prefix // the node IP's prefix on it, masked
}

// findUplink finds the interface holding ip.
func findUplink(h *netlink.Handle, ip netip.Addr) (uplink, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return uplink{}, fmt.Errorf("listing the node's addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr() != ip {
			continue
		}
		link, err := h.LinkByIndex(a.LinkIndex)
		if err != nil {
			return uplink{}, fmt.Errorf("the interface holding the node IP %s: %w", ip, err)
		}
		return uplink{index: a.LinkIndex, name: link.Attrs().Name, mtu: link.Attrs().MTU, segment: p.Masked()}, nil
	}
	return uplink{}, fmt.Errorf("no interface of this network namespace holds the node IP %s: give the node's own underlay address", ip)
}

// vxlanSpec is the device the config wants on up.
func vxlanSpec(cfg *Config, up uplink) *netlink.Vxlan {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = cfg.Device
	attrs.MTU = up.mtu - Overhead
	attrs.HardwareAddr = VTEPMAC(cfg.NodeIP)
	return &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      cfg.VNI,
		VtepDevIndex: up.index,
		SrcAddr:      cfg.NodeIP.AsSlice(),
		Port:         cfg.Port,
		Learning:     false,
	}
}

// compatible tells whether an existing VXLAN device can be kept as it is
// but for MTU, MAC, address and state, which change in place; if not, why.
func compatible(have, want *netlink.Vxlan) string {
	switch {
	case have.VxlanId != want.VxlanId:
		return fmt.Sprintf("VNI %d, want %d", have.VxlanId, want.VxlanId)
	case have.Port != want.Port:
		return fmt.Sprintf("port %d, want %d", have.Port, want.Port)
	case !have.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local address %s, want %s", have.SrcAddr, want.SrcAddr)
	case have.VtepDevIndex != want.VtepDevIndex:
		return fmt.Sprintf("bound to interface %d, want %d", have.VtepDevIndex, want.VtepDevIndex)
	case have.Learning:
		return "learning on"
	case have.Group != nil && !have.Group.IsUnspecified():
		return fmt.Sprintf("remote/group %s", have.Group)
	case have.FlowBased:
		return "external (flow based)"
	case have.L2miss || have.L3miss || have.Proxy || have.GBP:
		return "l2miss, l3miss, proxy or gbp on"
	}
	return ""
}

// ensureDevice makes the VXLAN device what cfg wants on up, writing only
// what differs, and returns its index and what it changed (for the log).
func ensureDevice(cfg *Config, up uplink) (int, []string, error) {
	h := cfg.Handle
	spec := vxlanSpec(cfg, up)
	var changes []string
	link, err := h.LinkByName(cfg.Device)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return 0, nil, fmt.Errorf("the VXLAN device %s: %w", cfg.Device, err)
	case link.Type() != "vxlan":
		return 0, nil, fmt.Errorf("%s exists and is a %s, not a VXLAN device: remove it (ip link delete %s) or name another bridge", cfg.Device, link.Type(), cfg.Device)
	default:
		if why := compatible(link.(*netlink.Vxlan), spec); why != "" {
			cfg.Logger.Warn("overlay: re-creating the VXLAN device, whose settings cannot change in place", "device", cfg.Device, "has", why)
			if err := h.LinkDel(link); err != nil {
				return 0, nil, fmt.Errorf("deleting the VXLAN device %s (%s): %w", cfg.Device, why, err)
			}
			link = nil
			changes = append(changes, "re-created device ("+why+")")
		}
	}
	if link == nil {
		if err := h.LinkAdd(spec); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return 0, nil, fmt.Errorf("creating the VXLAN device %s: %w (another VXLAN device has VNI %d on port %d in this network namespace: remove it)", cfg.Device, err, cfg.VNI, cfg.Port)
			}
			return 0, nil, fmt.Errorf("creating the VXLAN device %s: %w", cfg.Device, err)
		}
		if link, err = h.LinkByName(cfg.Device); err != nil {
			return 0, nil, fmt.Errorf("the VXLAN device %s just created: %w", cfg.Device, err)
		}
		if len(changes) == 0 {
			changes = append(changes, "created device")
		}
	}
	attrs := link.Attrs()
	if attrs.MTU != spec.MTU {
		if err := h.LinkSetMTU(link, spec.MTU); err != nil {
			return 0, nil, fmt.Errorf("setting the MTU of %s to %d (uplink %s: %d − %d): %w", cfg.Device, spec.MTU, up.name, up.mtu, Overhead, err)
		}
		changes = append(changes, fmt.Sprintf("MTU %d → %d", attrs.MTU, spec.MTU))
	}
	if attrs.HardwareAddr.String() != spec.HardwareAddr.String() {
		if err := h.LinkSetHardwareAddr(link, spec.HardwareAddr); err != nil {
			return 0, nil, fmt.Errorf("setting the MAC of %s to %s: %w", cfg.Device, spec.HardwareAddr, err)
		}
		changes = append(changes, fmt.Sprintf("MAC %s → %s", attrs.HardwareAddr, spec.HardwareAddr))
	}
	addrChanges, err := ensureAddress(h, link, VTEPAddr(cfg.PodCIDR))
	if err != nil {
		return 0, nil, err
	}
	changes = append(changes, addrChanges...)
	if attrs.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return 0, nil, fmt.Errorf("bringing %s up: %w", cfg.Device, err)
		}
		changes = append(changes, "set up")
	}
	return attrs.Index, changes, nil
}

// ensureAddress makes vtep/32 the device's only IPv4 address.
func ensureAddress(h *netlink.Handle, link netlink.Link, vtep netip.Addr) ([]string, error) {
	name := link.Attrs().Name
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing the addresses of %s: %w", name, err)
	}
	want := netip.PrefixFrom(vtep, 32)
	var changes []string
	have := false
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && p == want {
			have = true
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return nil, fmt.Errorf("removing %s from %s: %w", a.IPNet, name, err)
		}
		changes = append(changes, "removed address "+a.IPNet.String())
	}
	if !have {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
			return nil, fmt.Errorf("adding the VTEP address %s to %s: %w", want, name, err)
		}
		changes = append(changes, "added address "+want.String())
	}
	return changes, nil
}

// removeDevice deletes the named VXLAN device (with its routes, neighbours
// and forwarding entries); a missing one is no error, another kind of link
// is left alone.
func removeDevice(h *netlink.Handle, name string) (bool, error) {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("the VXLAN device %s: %w", name, err)
	}
	if link.Type() != "vxlan" {
		return false, fmt.Errorf("%s is a %s, not the overlay's VXLAN device: left alone", name, link.Type())
	}
	if err := h.LinkDel(link); err != nil {
		return false, fmt.Errorf("deleting the VXLAN device %s: %w", name, err)
	}
	return true, nil
}

// read is the overlay's part of the kernel: main-table IPv4 routes through
// the VXLAN device (if any) or of RouteProtocol, and the device's IPv4
// neighbours and forwarding entries. Neighbours the kernel keeps without
// resolution (NOARP: multicast, broadcast) are not the overlay's.
func read(h *netlink.Handle, l links) (state, error) {
	var s state
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	var routes []netlink.Route
	err := retryDump(func() (err error) {
		routes, err = h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
		return err
	})
	if err != nil {
		return state{}, fmt.Errorf("listing routes: %w", err)
	}
	for _, r := range routes {
		if int(r.Protocol) != RouteProtocol && (l.vxlan == 0 || r.LinkIndex != l.vxlan) {
			continue
		}
		s.routes = append(s.routes, fromNetlinkRoute(r))
	}
	if l.vxlan == 0 {
		return s, nil
	}
	var neighs []netlink.Neigh
	if err := retryDump(func() (err error) {
		neighs, err = h.NeighList(l.vxlan, netlink.FAMILY_V4)
		return err
	}); err != nil {
		return state{}, fmt.Errorf("listing the neighbours of the VXLAN device: %w", err)
	}
	for _, n := range neighs {
		if n.LinkIndex != l.vxlan || n.State&unix.NUD_NOARP != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		s.neighs = append(s.neighs, neigh{IP: ip.Unmap(), MAC: n.HardwareAddr.String(), Permanent: n.State&unix.NUD_PERMANENT != 0})
	}
	var fdbs []netlink.Neigh
	if err := retryDump(func() (err error) {
		fdbs, err = h.NeighList(l.vxlan, unix.AF_BRIDGE)
		return err
	}); err != nil {
		return state{}, fmt.Errorf("listing the forwarding database of the VXLAN device: %w", err)
	}
	for _, f := range fdbs {
		if f.LinkIndex != l.vxlan {
			continue
		}
		ip, _ := netip.AddrFromSlice(f.IP)
		s.fdbs = append(s.fdbs, fdb{MAC: f.HardwareAddr.String(), Dst: ip.Unmap(), Permanent: f.State&unix.NUD_PERMANENT != 0})
	}
	return s, nil
}

// retryDump repeats a dump the kernel interrupted (the table changed
// under it): an incomplete list must not decide removals.
func retryDump(dump func() error) error {
	var err error
	for range 5 {
		if err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

func fromNetlinkRoute(r netlink.Route) route {
	var dst netip.Prefix
	if p, ok := prefixOf(r.Dst); ok {
		dst = p
	} else {
		dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0) // the default route
	}
	gw, _ := netip.AddrFromSlice(r.Gw)
	return route{
		Dst:      dst,
		Gw:       gw.Unmap(),
		Link:     r.LinkIndex,
		OnLink:   r.Flags&int(netlink.FLAG_ONLINK) != 0,
		Protocol: int(r.Protocol),
		Table:    r.Table,
		Tos:      r.Tos,
		Priority: r.Priority,
		Scope:    int(r.Scope),
		Type:     r.Type,
	}
}

func toNetlinkRoute(r route) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: r.Link,
		Dst:       ipNet(r.Dst),
		Protocol:  netlink.RouteProtocol(r.Protocol),
		Table:     r.Table,
		Tos:       r.Tos,
		Priority:  r.Priority,
		Scope:     netlink.Scope(r.Scope),
		Type:      r.Type,
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
	}
	if r.OnLink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr
}

// apply writes p in its order. Removals of what is already gone are no
// error. It returns how many writes succeeded and every failure.
func apply(h *netlink.Handle, vxlan int, p plan, log *slog.Logger) (int, error) {
	var errs []error
	done := 0
	write := func(what string, err error, attrs ...any) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		done++
		log.Debug("overlay: "+what, attrs...)
	}
	gone := func(err error) error {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	for _, f := range p.setFDB {
		write("set forwarding entry "+f.MAC+" → "+f.Dst.String(), h.NeighSet(toFDB(vxlan, f)))
	}
	for _, n := range p.setNeigh {
		write("set neighbour "+n.IP.String()+" → "+n.MAC, h.NeighSet(toNeigh(vxlan, n)))
	}
	for _, r := range p.setRoute {
		write("set route "+routeString(r), h.RouteReplace(toNetlinkRoute(r)))
	}
	for _, r := range p.delRoute {
		write("removed route "+routeString(r), gone(h.RouteDel(toNetlinkRoute(r))))
	}
	for _, n := range p.delNeigh {
		write("removed neighbour "+n.IP.String()+" → "+n.MAC, gone(h.NeighDel(toNeigh(vxlan, n))))
	}
	for _, f := range p.delFDB {
		write("removed forwarding entry "+f.MAC+" → "+f.Dst.String(), gone(h.NeighDel(toFDB(vxlan, f))))
	}
	return done, errors.Join(errs...)
}

func routeString(r route) string {
	s := r.Dst.String()
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	s += fmt.Sprintf(" dev #%d", r.Link)
	if r.OnLink {
		s += " onlink"
	}
	return s + fmt.Sprintf(" proto %d", r.Protocol)
}

func toNeigh(link int, n neigh) *netlink.Neigh {
	mac, _ := net.ParseMAC(n.MAC)
	return &netlink.Neigh{LinkIndex: link, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, IP: n.IP.AsSlice(), HardwareAddr: mac}
}

func toFDB(link int, f fdb) *netlink.Neigh {
	mac, _ := net.ParseMAC(f.MAC)
	n := &netlink.Neigh{LinkIndex: link, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, HardwareAddr: mac}
	if f.Dst.IsValid() {
		n.IP = f.Dst.AsSlice()
	}
	return n
}

// Cleanup removes the overlay from the network namespace of h (nil: the
// process's): the VXLAN device named device, which takes its routes,
// neighbours and forwarding entries with it, and every route of
// RouteProtocol (the direct routes). Nothing there is no error. For
// `havre agent reset`.
func Cleanup(h *netlink.Handle, device string) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	var errs []error
	if _, err := removeDevice(h, device); err != nil {
		errs = append(errs, err)
	}
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: RouteProtocol}
	var routes []netlink.Route
	err := retryDump(func() (err error) {
		routes, err = h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing the overlay's routes: %w", err))
	}
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing the overlay's route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	if ip.Is4() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

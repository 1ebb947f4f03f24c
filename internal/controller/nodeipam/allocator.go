package nodeipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrFull is returned when every subnet of the cluster CIDR is in use.
var ErrFull = errors.New("no pod CIDR left in the cluster CIDR")

// Allocator hands out the subnets of one IPv4 cluster CIDR.
type Allocator struct {
	base     uint32
	baseBits int // prefix length of the cluster CIDR
	subBits  int // prefix length of each subnet
	mu       sync.Mutex
	used     []bool
	next     int
}

// NewAllocator splits clusterCIDR (IPv4) into subnets of prefix length
// subnetBits.
func NewAllocator(clusterCIDR string, subnetBits int) (*Allocator, error) {
	ip, n, err := net.ParseCIDR(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("cluster CIDR %s: only IPv4 is supported", clusterCIDR)
	}
	ones, _ := n.Mask.Size()
	if subnetBits < ones || subnetBits > 30 {
		return nil, fmt.Errorf("pod CIDR size /%d does not fit cluster CIDR %s (want /%d to /30)", subnetBits, clusterCIDR, ones)
	}
	if subnetBits-ones > 16 {
		return nil, fmt.Errorf("cluster CIDR %s holds more than 65536 /%d subnets", clusterCIDR, subnetBits)
	}
	return &Allocator{
		base:     binary.BigEndian.Uint32(n.IP.To4()),
		baseBits: ones,
		subBits:  subnetBits,
		used:     make([]bool, 1<<(subnetBits-ones)),
	}, nil
}

func (a *Allocator) cidr(i int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a.base+uint32(i)<<(32-a.subBits))
	return fmt.Sprintf("%s/%d", net.IP(b[:]), a.subBits)
}

// index returns the subnet number of cidr, or an error if cidr is not one
// of this allocator's subnets.
func (a *Allocator) index(cidr string) (int, error) {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return 0, err
	}
	ones, _ := n.Mask.Size()
	if ip.To4() == nil || ones != a.subBits {
		return 0, fmt.Errorf("%s is not a /%d IPv4 subnet", cidr, a.subBits)
	}
	v := binary.BigEndian.Uint32(n.IP.To4())
	if v>>(32-a.baseBits) != a.base>>(32-a.baseBits) {
		return 0, fmt.Errorf("%s is outside the cluster CIDR %s", cidr, a.cidr(0))
	}
	return int((v - a.base) >> (32 - a.subBits)), nil
}

// Occupy marks cidr as used (a node already has it). It fails for subnets
// outside the cluster CIDR.
func (a *Allocator) Occupy(cidr string) error {
	i, err := a.index(cidr)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[i] = true
	return nil
}

// Allocate returns a free subnet, searching round-robin so that a released
// subnet is not handed out again at once.
func (a *Allocator) Allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := 0; k < len(a.used); k++ {
		i := (a.next + k) % len(a.used)
		if !a.used[i] {
			a.used[i] = true
			a.next = (i + 1) % len(a.used)
			return a.cidr(i), nil
		}
	}
	return "", ErrFull
}

// Release frees cidr. Subnets outside the cluster CIDR are ignored.
func (a *Allocator) Release(cidr string) {
	i, err := a.index(cidr)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[i] = false
}

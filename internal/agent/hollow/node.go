package hollow

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/util/workqueue"

	"github.com/havre/havre/internal/version"
)

// Heartbeat queue keys: "lease/<node>" and "status/<node>".
const (
	leaseKey  = "lease/"
	statusKey = "status/"
)

// Fake address ranges: node InternalIPs come from 100.64.0.0/10, pod CIDRs
// (when the node has none assigned) are /24s of 10.128.0.0/9.
var (
	hostIPBase  = netip.MustParseAddr("100.64.0.0")
	podCIDRBase = netip.MustParseAddr("10.128.0.0")
)

const (
	hostIPSlots  = 1<<22 - 2
	podCIDRSlots = 1 << 15
)

// node is one hollow node. Its heartbeat fields are only touched by the
// heartbeat worker holding its key (the queue never hands one key to two
// workers at once); lease and status keys use separate fields.
type node struct {
	name   string
	index  int
	hostIP string
	// fakeCIDR is the pod CIDR used while the node has none assigned.
	fakeCIDR netip.Prefix
	ids      [3]string // machine ID, system UUID, boot ID

	registeredOnce atomic.Bool
	uid            atomic.Value // types.UID once registered

	// status key
	registered bool
	lastReport time.Time
	// lease key
	lease *coordinationv1.Lease
	// used are the pod IPs handed out on this node (under Agent.ipsMu).
	used map[netip.Addr]bool
}

func newNode(name string, index int, slot uint32) *node {
	n := &node{name: name, index: index, used: map[netip.Addr]bool{}}
	n.hostIP = addrAdd(hostIPBase, slot%hostIPSlots+1).String()
	n.fakeCIDR = netip.PrefixFrom(addrAdd(podCIDRBase, (slot%podCIDRSlots)<<8), 24)
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	n.ids = [3]string{h[:32], h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], h[32:40] + "-" + h[40:44] + "-" + h[44:48] + "-" + h[48:52] + "-" + h[52:64]}
	return n
}

// addrAdd returns the IPv4 address off after base.
func addrAdd(base netip.Addr, off uint32) netip.Addr {
	b := base.As4()
	v := binary.BigEndian.Uint32(b[:]) + off
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (n *node) nodeUID() types.UID {
	uid, _ := n.uid.Load().(types.UID)
	return uid
}

// setupNodes watches every Node (the agent keeps only its own). A deleted
// node is registered again by its next status tick.
func (a *Agent) setupNodes(factory informers.SharedInformerFactory) error {
	inf := factory.Core().V1().Nodes().Informer()
	a.nodeLister, a.nodeSynced = inf.GetIndexer(), inf.HasSynced
	a.heartbeats = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "hollow-heartbeats"})
	return nil
}

func (a *Agent) labels(n *node) map[string]string {
	l := map[string]string{
		corev1.LabelHostname:      n.name,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
		LabelHollow:               "true",
	}
	for k, v := range a.opts.Labels {
		l[k] = v
	}
	return l
}

// heartbeatWorker registers nodes, renews their leases and keeps their
// status, each key rescheduling itself.
func (a *Agent) heartbeatWorker(ctx context.Context) {
	for {
		key, quit := a.heartbeats.Get()
		if quit {
			return
		}
		var next time.Duration
		if name, ok := strings.CutPrefix(key, leaseKey); ok {
			next = a.leaseTick(ctx, a.nodes[name])
		} else if name, ok := strings.CutPrefix(key, statusKey); ok {
			next = a.statusTick(ctx, a.nodes[name])
		}
		a.heartbeats.Done(key)
		if next > 0 && ctx.Err() == nil {
			a.heartbeats.AddAfter(key, next)
		}
	}
}

// spread returns the node's share of d: the first heartbeats after
// registration are spread over one interval so that thousands of nodes
// do not renew at the same instant.
func (a *Agent) spread(n *node, d time.Duration) time.Duration {
	return d * time.Duration(n.index+1) / time.Duration(len(a.nodes))
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Float64()*renewJitter*float64(d))
}

// statusTick registers the node if needed, then writes its status when it
// changed (the node lifecycle controller may have marked it Unknown) or
// when the last report is older than StatusReportInterval.
func (a *Agent) statusTick(ctx context.Context, n *node) time.Duration {
	if n == nil {
		return 0
	}
	if n.registered {
		obj, exists, _ := a.nodeLister.GetByKey(n.name)
		if !exists {
			// Not seen yet, or deleted: ask the API.
			_, err := a.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				slog.Info("hollow node was deleted; registering it again", "node", n.name)
				n.registered = false
			} else {
				return a.opts.StatusUpdateInterval
			}
		} else {
			cur := obj.(*corev1.Node)
			s := a.nodeStatus(n, cur)
			if !nodeStatusChanged(cur.Status, s) && a.now().Sub(n.lastReport) < a.opts.StatusReportInterval {
				return jitter(a.opts.StatusUpdateInterval)
			}
			if err := a.writeNodeStatus(ctx, n, cur, s); err != nil {
				if ctx.Err() == nil {
					slog.Warn("updating a hollow node's status", "node", n.name, "err", err)
				}
				return time.Second
			}
			return jitter(a.opts.StatusUpdateInterval)
		}
	}
	if err := a.register(ctx, n); err != nil {
		if ctx.Err() == nil {
			slog.Warn("registering a hollow node failed; retrying", "node", n.name, "err", err)
		}
		return time.Second
	}
	n.registered = true
	if !n.registeredOnce.Load() {
		// The lease key starts its own chain once, here.
		a.markRegistered(n)
		a.heartbeats.Add(leaseKey + n.name)
		return a.spread(n, a.opts.StatusUpdateInterval)
	}
	return jitter(a.opts.StatusUpdateInterval)
}

// register creates the Node, or makes an existing one carry the agent's
// labels, and writes its status.
func (a *Agent) register(ctx context.Context, n *node) error {
	nodes := a.client.CoreV1().Nodes()
	cur, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: a.labels(n)}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if cur, err = nodes.Get(ctx, n.name, metav1.GetOptions{}); err != nil {
			return err
		}
		changed := false
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for k, v := range a.labels(n) {
			if cur.Labels[k] != v {
				cur.Labels[k] = v
				changed = true
			}
		}
		if changed {
			if cur, err = nodes.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	n.uid.Store(cur.UID)
	return a.writeNodeStatus(ctx, n, cur, a.nodeStatus(n, cur))
}

func (a *Agent) writeNodeStatus(ctx context.Context, n *node, cur *corev1.Node, s corev1.NodeStatus) error {
	now := metav1.NewTime(a.now().Truncate(time.Second))
	for i := range s.Conditions {
		s.Conditions[i].LastHeartbeatTime = now
	}
	up := cur.DeepCopy()
	up.Status = s
	if _, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
		return err
	}
	n.lastReport = a.now()
	return nil
}

// nodeStatus is the status a healthy kubelet reports; transition and
// heartbeat times of unchanged conditions are kept from cur.
func (a *Agent) nodeStatus(n *node, cur *corev1.Node) corev1.NodeStatus {
	now := metav1.NewTime(a.now().Truncate(time.Second))
	s := corev1.NodeStatus{
		Capacity:    a.capacity.DeepCopy(),
		Allocatable: a.capacity.DeepCopy(),
		Phase:       cur.Status.Phase,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.hostIP},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               n.ids[0],
			SystemUUID:              n.ids[1],
			BootID:                  n.ids[2],
			KernelVersion:           "hollow",
			OSImage:                 "Havre hollow node",
			ContainerRuntimeVersion: RuntimeName + "://" + version.Havre,
			KubeletVersion:          version.Kubernetes,
			OperatingSystem:         "linux",
			Architecture:            goruntime.GOARCH,
		},
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
		},
	}
	for i := range s.Conditions {
		c := &s.Conditions[i]
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		for _, o := range cur.Status.Conditions {
			if o.Type == c.Type {
				c.LastHeartbeatTime = o.LastHeartbeatTime
				if o.Status == c.Status {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	// Conditions others own (NetworkUnavailable, ...) are kept.
	for _, o := range cur.Status.Conditions {
		switch o.Type {
		case corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeReady:
		default:
			s.Conditions = append(s.Conditions, o)
		}
	}
	return s
}

// nodeStatusChanged reports whether s differs from old in more than
// heartbeat times.
func nodeStatusChanged(old, s corev1.NodeStatus) bool {
	a, b := old.DeepCopy(), s.DeepCopy()
	for _, st := range []*corev1.NodeStatus{a, b} {
		for i := range st.Conditions {
			st.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		st.DaemonEndpoints = corev1.NodeDaemonEndpoints{}
		st.Config = nil
		st.VolumesInUse, st.VolumesAttached = nil, nil
		st.RuntimeHandlers, st.Features, st.DeclaredFeatures = nil, nil, nil
		st.Images = nil
	}
	return !apiequality.Semantic.DeepEqual(a, b)
}

// leaseTick renews the node's Lease in kube-node-lease.
func (a *Agent) leaseTick(ctx context.Context, n *node) time.Duration {
	if n == nil {
		return 0
	}
	first := n.lease == nil
	lease, err := a.renewLease(ctx, n, n.lease)
	if err != nil {
		n.lease = nil
		if ctx.Err() == nil {
			slog.Warn("renewing a hollow node's lease", "node", n.name, "err", err)
		}
		return time.Second
	}
	n.lease = lease
	if first {
		return a.spread(n, a.opts.LeaseRenewInterval)
	}
	return jitter(a.opts.LeaseRenewInterval)
}

func (a *Agent) renewLease(ctx context.Context, n *node, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(a.now())
	holder := n.name
	duration := int32(leaseDurationSeconds)
	if lease == nil {
		l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       &holder,
					LeaseDurationSeconds: &duration,
					RenewTime:            &now,
				},
			}
			if uid := n.nodeUID(); uid != "" {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: uid}}
			}
			return leases.Create(ctx, l, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, err
		}
		lease = l
	}
	l := lease.DeepCopy()
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &duration
	l.Spec.RenewTime = &now
	if uid := n.nodeUID(); uid != "" {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: uid}}
	}
	return leases.Update(ctx, l, metav1.UpdateOptions{})
}

package agent

import (
	"context"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/network/ingress/routes"
	"github.com/havre/havre/internal/version"
)

var metav1GetOptions = metav1.GetOptions{}

// Node reporting, as the kubelet does it.
const (
	maxPods              = 110
	leaseDuration        = 40 // seconds
	leaseRenewInterval   = 10 * time.Second
	statusInterval       = 10 * time.Second
	statusReportInterval = time.Minute // heartbeat of an unchanged status
	maxNodeImages        = 50
	// Hard eviction thresholds, taken off allocatable and used for the
	// pressure conditions.
	evictionMemory      = 100 << 20
	evictionDiskPercent = 10
	evictionPIDPercent  = 90
)

// computeAllocatable returns capacity less the eviction thresholds.
func (a *Agent) computeAllocatable(m machineInfo) corev1.ResourceList {
	c := a.capacity(m)
	alloc := c.DeepCopy()
	if mem := c.Memory().Value() - evictionMemory; mem > 0 {
		alloc[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
	}
	if eph, ok := c[corev1.ResourceEphemeralStorage]; ok {
		alloc[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(eph.Value()*(100-evictionDiskPercent)/100, resource.BinarySI)
	}
	return alloc
}

func (a *Agent) capacity(m machineInfo) corev1.ResourceList {
	c := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(m.CPUs), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(m.MemTotal, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	if total, _, err := fsStats(a.dirs.root); err == nil {
		c[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(total, resource.BinarySI)
	}
	return c
}

func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{
		corev1.LabelHostname:             a.nodeName,
		corev1.LabelOSStable:             "linux",
		corev1.LabelArchStable:           goruntime.GOARCH,
		"beta.kubernetes.io/os":          "linux",
		"beta.kubernetes.io/arch":        goruntime.GOARCH,
		"node.kubernetes.io/havre-agent": "true",
		routes.NodeLabel:                 strconv.FormatBool(!a.opts.DisableIngress),
	}
	for k, v := range a.opts.NodeLabels {
		l[k] = v
	}
	return l
}

// registerNode creates the Node, or makes an existing one carry this
// agent's labels. It retries until it succeeds or ctx is done.
func (a *Agent) registerNode(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		err := a.tryRegister(ctx)
		if err == nil {
			return nil
		}
		slog.Warn("registering the node failed; retrying", "node", a.nodeName, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 7*time.Second)
	}
}

func (a *Agent) tryRegister(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.nodeName, Labels: a.nodeLabels()}}
	node.Status = a.nodeStatus(ctx, node)
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		return a.writeNodeStatus(ctx, created, node.Status)
	}
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing, err := nodes.Get(ctx, a.nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	changed := false
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	for k, v := range a.nodeLabels() {
		if existing.Labels[k] != v {
			existing.Labels[k] = v
			changed = true
		}
	}
	if changed {
		if existing, err = nodes.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return a.writeNodeStatus(ctx, existing, a.nodeStatus(ctx, existing))
}

func (a *Agent) writeNodeStatus(ctx context.Context, node *corev1.Node, status corev1.NodeStatus) error {
	n := node.DeepCopy()
	n.Status = status
	_, err := a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// runtimeConditions returns whether the runtime and its network are ready,
// and why not.
func (a *Agent) runtimeConditions(ctx context.Context) (runtimeReady, networkReady bool, why string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := a.rt.Status(ctx)
	if err != nil {
		return false, false, fmt.Sprintf("container runtime is down: %v", err)
	}
	runtimeReady, networkReady = false, false
	var reasons []string
	for _, c := range st.GetConditions() {
		switch c.Type {
		case runtimeapi.RuntimeReady:
			runtimeReady = c.Status
			if !c.Status {
				reasons = append(reasons, fmt.Sprintf("container runtime not ready: %s: %s", c.Reason, c.Message))
			}
		case runtimeapi.NetworkReady:
			networkReady = c.Status
			if !c.Status {
				reasons = append(reasons, fmt.Sprintf("container runtime network not ready: NetworkReady=false reason:%s message:%s", c.Reason, c.Message))
			}
		}
	}
	return runtimeReady, networkReady, strings.Join(reasons, "; ")
}

// nodeStatus computes the node's status; transition and heartbeat times of
// unchanged conditions are kept from node's.
func (a *Agent) nodeStatus(ctx context.Context, node *corev1.Node) corev1.NodeStatus {
	m, hostIPs, alloc := a.facts()
	now := mtime(a.now())
	s := corev1.NodeStatus{
		Capacity:    a.capacity(m),
		Allocatable: alloc,
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               m.MachineID,
			SystemUUID:              m.SystemUUID,
			BootID:                  m.BootID,
			KernelVersion:           m.Kernel,
			OSImage:                 m.OSImage,
			ContainerRuntimeVersion: a.runtimeName + "://" + a.runtimeVer,
			KubeletVersion:          version.Kubernetes,
			OperatingSystem:         "linux",
			Architecture:            goruntime.GOARCH,
		},
	}
	for _, ip := range hostIPs {
		s.Addresses = append(s.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	s.Addresses = append(s.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: a.nodeName})
	s.DaemonEndpoints.KubeletEndpoint.Port = a.streamingPort

	runtimeReady, networkReady, why := a.runtimeConditions(ctx)
	_, memAvail, _ := readMeminfo()
	_, diskAvail, derr := fsStats(a.dirs.root)
	diskTotal := s.Capacity.StorageEphemeral().Value()
	procs, pidMax, perr := pidStats()

	cond := func(t corev1.NodeConditionType, bad bool, badReason, badMsg, okReason, okMsg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
		if bad {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, badReason, badMsg
		}
		return c
	}
	s.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, memAvail > 0 && memAvail < evictionMemory,
			"KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
			"KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, derr == nil && diskTotal > 0 && diskAvail*100/diskTotal < evictionDiskPercent,
			"KubeletHasDiskPressure", "kubelet has disk pressure",
			"KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, perr == nil && pidMax > 0 && procs*100/pidMax > evictionPIDPercent,
			"KubeletHasInsufficientPID", "kubelet has insufficient PID available",
			"KubeletHasSufficientPID", "kubelet has sufficient PID available"),
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !runtimeReady || !networkReady {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, "KubeletNotReady", why
	}
	s.Conditions = append(s.Conditions, ready)
	for i := range s.Conditions {
		c := &s.Conditions[i]
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		for _, o := range node.Status.Conditions {
			if o.Type == c.Type {
				c.LastHeartbeatTime = o.LastHeartbeatTime
				if o.Status == c.Status {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	s.Images = a.nodeImages(ctx)
	return s
}

func readMeminfo() (total, avail int64, err error) {
	data, err := readFile("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	return parseMeminfo(data)
}

// nodeImages lists the largest images the runtime holds.
func (a *Agent) nodeImages(ctx context.Context) []corev1.ContainerImage {
	if a.cri == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := a.cri.Images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil
	}
	var out []corev1.ContainerImage
	for _, img := range resp.Images {
		names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
		if len(names) == 0 {
			continue
		}
		out = append(out, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].SizeBytes > out[j].SizeBytes })
	if len(out) > maxNodeImages {
		out = out[:maxNodeImages]
	}
	return out
}

// nodeStatusChanged reports whether s differs from the node's status in
// more than heartbeat times.
func nodeStatusChanged(old, s corev1.NodeStatus) bool {
	a, b := old.DeepCopy(), s.DeepCopy()
	for _, st := range []*corev1.NodeStatus{a, b} {
		for i := range st.Conditions {
			st.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		st.Config = nil
		st.VolumesInUse, st.VolumesAttached = nil, nil
		st.RuntimeHandlers, st.Features = nil, nil
		st.DeclaredFeatures = nil
	}
	return !apiequality.Semantic.DeepEqual(a, b)
}

// startNodeLoops starts the node informer (pod CIDR → CNI configuration),
// the status loop and the lease loop.
func (a *Agent) startNodeLoops(ctx context.Context, wg *sync.WaitGroup) error {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + a.nodeName }))
	inf := factory.Core().V1().Nodes().Informer()
	cidrChanged := make(chan struct{}, 1)
	notify := func(obj any) {
		if _, ok := obj.(*corev1.Node); ok {
			select {
			case cidrChanged <- struct{}{}:
			default:
			}
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    notify,
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: notify,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	getNode := func() *corev1.Node {
		obj, ok, _ := inf.GetStore().GetByKey(a.nodeName)
		if !ok {
			return nil
		}
		return obj.(*corev1.Node)
	}

	wg.Add(3)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	// Network: once the node has a pod CIDR, set up the overlay, the bridge,
	// the service proxy and DNS (startPodNetwork), then write the CNI
	// configuration, after which pods start.
	go func() {
		defer wg.Done()
		written := ""
		networkStarted := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-cidrChanged:
			}
			node := getNode()
			if node == nil {
				// Deleted: register again.
				if err := a.registerNode(ctx); err != nil {
					return
				}
				continue
			}
			if !a.ownRuntime || len(node.Spec.PodCIDRs) == 0 || node.Spec.PodCIDRs[0] == written {
				continue
			}
			cidr := node.Spec.PodCIDRs[0]
			if !networkStarted {
				mtu, err := a.startPodNetwork(ctx, wg, cidr)
				if err != nil {
					slog.Error("setting up the pod network", "podCIDR", cidr, "err", err)
					continue
				}
				a.podMTU.Store(int64(mtu))
				networkStarted = true
			} else if written != "" {
				slog.Warn("the node's pod CIDR changed; restart the agent to move its pods' network", "from", written, "to", cidr)
			}
			wrote, err := a.writeCNIConfig(cidr, false)
			if err != nil {
				slog.Error("writing the CNI configuration", "podCIDR", cidr, "err", err)
				continue
			}
			written = cidr
			a.cniCIDR.Store(cidr)
			if wrote {
				slog.Info("pod network configured", "podCIDR", cidr, "bridge", a.bridge())
			}
			a.kickStatus()
		}
	}()
	// Status and lease.
	go func() {
		defer wg.Done()
		a.nodeLoop(ctx, getNode)
	}()
	return nil
}

// kickStatus asks the status loop for an early round.
func (a *Agent) kickStatus() {
	select {
	case a.statusKick <- struct{}{}:
	default:
	}
}

func (a *Agent) nodeLoop(ctx context.Context, getNode func() *corev1.Node) {
	var lease *coordinationv1.Lease
	var lastReport time.Time
	statusT := time.NewTimer(0)
	leaseT := time.NewTimer(0)
	defer statusT.Stop()
	defer leaseT.Stop()
	// While the network is not ready, look more often: readiness follows
	// the CNI configuration within a second.
	fast := 500 * time.Millisecond
	var netDownSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseT.C:
			var err error
			lease, err = a.renewLease(ctx, lease)
			if err != nil {
				slog.Warn("renewing the node lease", "err", err)
				lease = nil
				leaseT.Reset(time.Second)
			} else {
				leaseT.Reset(leaseRenewInterval)
			}
			continue
		case <-a.statusKick:
		case <-statusT.C:
		}
		next := statusInterval
		node := getNode()
		if node != nil {
			a.refreshFacts()
			s := a.nodeStatus(ctx, node)
			if nodeStatusChanged(node.Status, s) || time.Since(lastReport) >= statusReportInterval {
				now := mtime(a.now())
				for i := range s.Conditions {
					s.Conditions[i].LastHeartbeatTime = now
				}
				if err := a.writeNodeStatus(ctx, node, s); err != nil {
					slog.Warn("updating the node status", "err", err)
					next = time.Second
				} else {
					lastReport = time.Now()
				}
			}
			for _, c := range s.Conditions {
				if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
					next = fast
					if netDownSince.IsZero() {
						netDownSince = time.Now()
					}
					a.nudgeNetwork(&netDownSince)
				} else if c.Type == corev1.NodeReady {
					netDownSince = time.Time{}
				}
			}
		} else {
			next = time.Second
		}
		statusT.Reset(next)
	}
}

// nudgeNetwork rewrites the CNI configuration when the runtime has not
// taken it up for a while: containerd reloads it on file events only, and
// an event it missed would leave the node NotReady.
func (a *Agent) nudgeNetwork(since *time.Time) {
	cidr, _ := a.cniCIDR.Load().(string)
	if !a.ownRuntime || cidr == "" || time.Since(*since) < 5*time.Second {
		return
	}
	*since = time.Now()
	if _, err := a.writeCNIConfig(cidr, true); err != nil {
		slog.Warn("rewriting the CNI configuration", "err", err)
		return
	}
	slog.Info("the runtime's network is still not ready; rewrote the CNI configuration", "podCIDR", cidr)
}

func (a *Agent) renewLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(a.now())
	if lease == nil {
		l, err := leases.Get(ctx, a.nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: a.nodeName, Namespace: corev1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       &a.nodeName,
					LeaseDurationSeconds: new(int32(leaseDuration)),
					RenewTime:            &now,
				},
			}
			if node, err := a.client.CoreV1().Nodes().Get(ctx, a.nodeName, metav1.GetOptions{}); err == nil {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
			}
			return leases.Create(ctx, l, metav1.CreateOptions{})
		}
		if err != nil {
			return nil, err
		}
		lease = l
	}
	l := lease.DeepCopy()
	l.Spec.HolderIdentity = &a.nodeName
	l.Spec.LeaseDurationSeconds = new(int32(leaseDuration))
	l.Spec.RenewTime = &now
	return leases.Update(ctx, l, metav1.UpdateOptions{})
}

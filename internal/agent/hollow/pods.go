package hollow

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// podIP is an address handed out to a pod.
type podIP struct {
	uid  types.UID
	node *node
	ip   netip.Addr
}

// setupPods watches the bound pods and queues those of the agent's nodes.
func (a *Agent) setupPods(factory informers.SharedInformerFactory) error {
	inf := factory.Core().V1().Pods().Informer()
	a.podLister, a.podSynced = inf.GetIndexer(), inf.HasSynced
	a.pods = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "hollow-pods"})
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok || a.nodes[pod.Spec.NodeName] == nil {
			return
		}
		if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
			a.pods.Add(key)
		}
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	return err
}

func (a *Agent) podWorker(ctx context.Context) {
	for {
		key, quit := a.pods.Get()
		if quit {
			return
		}
		if err := a.syncPod(ctx, key); err != nil {
			if ctx.Err() == nil {
				if !apierrors.IsConflict(err) {
					slog.Warn("syncing a hollow pod failed; retrying", "pod", key, "err", err)
				}
				a.pods.AddRateLimited(key)
			}
		} else {
			a.pods.Forget(key)
		}
		a.pods.Done(key)
	}
}

// syncPod reports a pod of one of the agent's nodes as the kubelet would:
// Running and Ready (or exited, as its AnnotationExitCode asks), and
// terminated then deleted once it is being deleted.
func (a *Agent) syncPod(ctx context.Context, key string) error {
	obj, exists, err := a.podLister.GetByKey(key)
	if err != nil {
		return err
	}
	if !exists {
		a.releaseIP(key)
		a.forgetWritten(key)
		return nil
	}
	pod := obj.(*corev1.Pod)
	n := a.nodes[pod.Spec.NodeName]
	if n == nil {
		a.releaseIP(key)
		return nil
	}
	if a.staleWrite(key, pod.ResourceVersion) {
		return nil // our last write is not in the informer yet
	}
	now := a.now()
	if pod.DeletionTimestamp != nil {
		return a.terminatePod(ctx, key, n, pod, now)
	}
	if terminal(pod) {
		a.releaseIP(key)
		return nil
	}
	ip, err := a.podIP(key, n, pod)
	if err != nil {
		return err
	}
	return a.writeStatus(ctx, key, pod, runningStatus(pod, n.hostIP, ip, now))
}

// terminatePod stops a pod being deleted: its containers are reported
// terminated and the pod deleted with grace period 0, as the kubelet does
// once it stopped them.
func (a *Agent) terminatePod(ctx context.Context, key string, n *node, pod *corev1.Pod, now time.Time) error {
	if !terminal(pod) {
		if err := a.writeStatus(ctx, key, pod, terminatedStatus(pod, now)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
	a.releaseIP(key)
	if pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds == 0 {
		return nil // already asked; finalizers hold it
	}
	zero := int64(0)
	uid := pod.UID
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting terminated pod: %w", err)
	}
	return nil
}

// writeStatus writes st unless the pod already has it.
func (a *Agent) writeStatus(ctx context.Context, key string, pod *corev1.Pod, st corev1.PodStatus) error {
	if statusEqual(&pod.Status, &st) {
		return nil
	}
	up := pod.DeepCopy()
	up.Status = st
	if _, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{}); err != nil {
		return err
	}
	a.writtenMu.Lock()
	a.written[key] = pod.ResourceVersion
	a.writtenMu.Unlock()
	return nil
}

func (a *Agent) staleWrite(key, rv string) bool {
	a.writtenMu.Lock()
	defer a.writtenMu.Unlock()
	return rv != "" && a.written[key] == rv
}

func (a *Agent) forgetWritten(key string) {
	a.writtenMu.Lock()
	defer a.writtenMu.Unlock()
	delete(a.written, key)
}

// podCIDR is the node's assigned pod CIDR, else its fake one.
func (a *Agent) podCIDR(n *node) netip.Prefix {
	if obj, ok, _ := a.nodeLister.GetByKey(n.name); ok {
		if p, err := netip.ParsePrefix(obj.(*corev1.Node).Spec.PodCIDR); err == nil && p.Addr().Is4() && p.Bits() <= 30 {
			return p.Masked()
		}
	}
	return n.fakeCIDR
}

// podIP returns the pod's address: the node's for host-network pods,
// otherwise one of the node's pod CIDR, kept for the pod's lifetime (and
// taken over from its status after a restart of the agent).
func (a *Agent) podIP(key string, n *node, pod *corev1.Pod) (netip.Addr, error) {
	if pod.Spec.HostNetwork {
		return netip.MustParseAddr(n.hostIP), nil
	}
	a.ipsMu.Lock()
	defer a.ipsMu.Unlock()
	if cur, ok := a.ips[key]; ok {
		if cur.uid == pod.UID && cur.node == n {
			return cur.ip, nil
		}
		delete(cur.node.used, cur.ip)
		delete(a.ips, key)
	}
	if ip, err := netip.ParseAddr(pod.Status.PodIP); err == nil && !n.used[ip] {
		n.used[ip] = true
		a.ips[key] = podIP{uid: pod.UID, node: n, ip: ip}
		return ip, nil
	}
	cidr := a.podCIDR(n)
	size := uint32(1) << (32 - cidr.Bits())
	for off := uint32(2); off < size-1; off++ {
		ip := addrAdd(cidr.Addr(), off)
		if !n.used[ip] {
			n.used[ip] = true
			a.ips[key] = podIP{uid: pod.UID, node: n, ip: ip}
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("node %s has no free address in %s", n.name, cidr)
}

func (a *Agent) releaseIP(key string) {
	a.ipsMu.Lock()
	defer a.ipsMu.Unlock()
	if cur, ok := a.ips[key]; ok {
		delete(cur.node.used, cur.ip)
		delete(a.ips, key)
	}
}

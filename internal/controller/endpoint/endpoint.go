//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

// Package endpoint is the Endpoints controller, as kube-controller-manager's
// (the legacy one beside EndpointSlices): for every Service with a selector
// it keeps an Endpoints object of the same name listing the matching pods'
// addresses, ready ones under addresses and the others under
// notReadyAddresses, with the Service's ports resolved per pod and packed
// into canonical subsets.
//
// An Endpoints object holds at most MaxAddresses addresses (ready ones
// kept first); a truncated one is annotated
// endpoints.kubernetes.io/over-capacity: truncated. Endpoints carry the
// Service's labels (plus service.kubernetes.io/headless for headless
// Services) and endpoints.kubernetes.io/last-change-trigger-time. Nothing is
// written when nothing changed.
//
// It never writes the Endpoints of Services without a selector (their
// owners write those, e.g. the kubernetes Service's), never touches pods or
// Services, and only deletes Endpoints whose Service is gone.
package endpoint

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	esreconciler "k8s.io/endpointslice"
	esutil "k8s.io/endpointslice/util"

	"github.com/havre/havre/internal/controller"
)

const (
	// MaxAddresses is how many addresses one Endpoints object holds.
	MaxAddresses = 1000
	// OverCapacityTruncated is the value of the over-capacity annotation
	// on a truncated Endpoints object.
	OverCapacityTruncated = "truncated"
	// leaderElectionAnnotation marks Endpoints used as leader-election locks
	// by old components; they are no Service's endpoints.
	leaderElectionAnnotation = "control-plane.alpha.kubernetes.io/leader"

	staleRetry    = 5 * time.Millisecond
	maxStaleRetry = time.Second
)

// Controller keeps the Endpoints of Services with selectors.
type Controller struct {
	client          kubernetes.Interface
	serviceLister   corelisters.ServiceLister
	podLister       corelisters.PodLister
	endpointsLister corelisters.EndpointsLister
	synced          []cache.InformerSynced
	queue           workqueue.TypedRateLimitingInterface[string]
	staleBackoff    workqueue.TypedRateLimiter[string]
	triggerTimes    *esutil.TriggerTimeTracker
	stale           *staleTracker
	recorder        record.EventRecorder
	batchPeriod     time.Duration
}

// New returns a controller on the factory's Service, Pod and Endpoints
// informers, recording Events with recorder. Pod changes are synced after
// batchPeriod (upstream's --endpoint-updates-batch-period, 0 by default).
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, batchPeriod time.Duration) (*Controller, error) {
	svcInf := factory.Core().V1().Services()
	podInf := factory.Core().V1().Pods()
	epInf := factory.Core().V1().Endpoints()
	c := &Controller{
		client:          client,
		serviceLister:   svcInf.Lister(),
		podLister:       podInf.Lister(),
		endpointsLister: epInf.Lister(),
		synced:          []cache.InformerSynced{svcInf.Informer().HasSynced, podInf.Informer().HasSynced, epInf.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoint"}),
		staleBackoff: workqueue.NewTypedItemExponentialFailureRateLimiter[string](staleRetry, maxStaleRetry),
		triggerTimes: esutil.NewTriggerTimeTracker(),
		stale:        &staleTracker{rv: map[types.NamespacedName]string{}},
		recorder:     recorder,
		batchPeriod:  batchPeriod,
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(controller.PodServiceHandlers(c.serviceLister,
		func(key string) { c.queue.AddAfter(key, c.batchPeriod) })); err != nil {
		return nil, err
	}
	// A deleted Endpoints object of a live Service is written again.
	if _, err := epInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run syncs Services with workers goroutines until ctx is done. Once the
// caches have synced it queues every Endpoints object, so that those whose
// Service went while the controller was not running are deleted.
func (c *Controller) Run(ctx context.Context, workers int) {
	controller.RunWorkers(ctx, c.queue, c.synced, workers, c.sync, "syncing endpoints failed; retrying", "service",
		controller.AfterSync(func(context.Context) { c.queueLeftovers() }))
}

func (c *Controller) queueLeftovers() {
	list, err := c.endpointsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ep := range list {
		if _, ok := ep.Annotations[leaderElectionAnnotation]; ok {
			continue
		}
		c.enqueue(ep)
	}
}

func (c *Controller) enqueue(obj any) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// sync writes the Endpoints of the Service key names.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.serviceLister.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The Service is gone: so are its Endpoints.
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.triggerTimes.DeleteService(ns, name)
		c.stale.forget(ns, name)
		c.staleBackoff.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		return nil
	}

	pods, err := c.podLister.Pods(ns).List(labels.Set(svc.Spec.Selector).AsSelectorPreValidated())
	if err != nil {
		return err
	}
	// Computed before anything can return early, so that the tracker sees
	// every pod change.
	trigger := c.triggerTimes.ComputeEndpointLastChangeTriggerTime(ns, svc, pods)

	current, err := c.endpointsLister.Endpoints(ns).Get(name)
	exists := err == nil
	switch {
	case apierrors.IsNotFound(err):
		current = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	case err != nil:
		return err
	case c.stale.isStale(current):
		// The cache still holds what this controller already replaced.
		c.queue.AddAfter(key, c.staleBackoff.When(key))
		return nil
	}
	c.staleBackoff.Forget(key)

	want := desired(svc, pods, current, trigger)
	if exists && equalEndpoints(current, want) {
		return nil
	}
	if !exists {
		_, err = c.client.CoreV1().Endpoints(ns).Create(ctx, want, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			c.recorder.Eventf(want, corev1.EventTypeWarning, "FailedToCreateEndpoint",
				"Failed to create endpoint for service %s/%s: %v", ns, name, err)
			return err
		}
		return nil
	}
	updated, err := c.client.CoreV1().Endpoints(ns).Update(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		c.recorder.Eventf(want, corev1.EventTypeWarning, "FailedToUpdateEndpoint",
			"Failed to update endpoint %s/%s: %v", ns, name, err)
		return err
	}
	if updated.ResourceVersion != current.ResourceVersion {
		c.stale.mark(current)
	}
	return nil
}

// desired is the Endpoints object the Service's pods call for, built on
// current (kept for its metadata).
func desired(svc *corev1.Service, pods []*corev1.Pod, current *corev1.Endpoints, trigger time.Time) *corev1.Endpoints {
	var subsets []corev1.EndpointSubset
	for _, pod := range pods {
		if !esutil.ShouldPodBeInEndpoints(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		addr, ok := podAddress(svc, pod)
		if !ok {
			continue
		}
		ready := svc.Spec.PublishNotReadyAddresses || esutil.IsPodReady(pod)
		subset := func(ports []corev1.EndpointPort) corev1.EndpointSubset {
			if ready {
				return corev1.EndpointSubset{Addresses: []corev1.EndpointAddress{addr}, Ports: ports}
			}
			return corev1.EndpointSubset{NotReadyAddresses: []corev1.EndpointAddress{addr}, Ports: ports}
		}
		if len(svc.Spec.Ports) == 0 {
			// A headless Service may have no ports: its addresses alone.
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				subsets = append(subsets, subset(nil))
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, err := esreconciler.FindPort(pod, sp)
			if err != nil {
				continue
			}
			subsets = append(subsets, subset([]corev1.EndpointPort{{
				Name: sp.Name, Port: int32(port), Protocol: sp.Protocol, AppProtocol: sp.AppProtocol}}))
		}
	}

	ep := current.DeepCopy()
	ep.Subsets = RepackSubsets(subsets)
	ep.Labels = map[string]string{}
	for k, v := range svc.Labels {
		ep.Labels[k] = v
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		ep.Labels[corev1.IsHeadlessService] = ""
	} else {
		delete(ep.Labels, corev1.IsHeadlessService)
	}
	if ep.Annotations == nil {
		ep.Annotations = map[string]string{}
	}
	if !trigger.IsZero() {
		ep.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger.UTC().Format(time.RFC3339Nano)
	} else {
		delete(ep.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
	if truncate(ep) {
		ep.Annotations[corev1.EndpointsOverCapacity] = OverCapacityTruncated
	} else {
		delete(ep.Annotations, corev1.EndpointsOverCapacity)
	}
	return ep
}

// equalEndpoints reports whether writing want over current would change
// anything but the trigger time: a new trigger time alone (a pod event
// that moved no address) is not worth a write.
func equalEndpoints(current, want *corev1.Endpoints) bool {
	if !apiequality.Semantic.DeepEqual(current.Subsets, want.Subsets) || !apiequality.Semantic.DeepEqual(current.Labels, want.Labels) {
		return false
	}
	a, b := map[string]string{}, map[string]string{}
	for k, v := range current.Annotations {
		a[k] = v
	}
	for k, v := range want.Annotations {
		b[k] = v
	}
	delete(a, corev1.EndpointsLastChangeTriggerTime)
	delete(b, corev1.EndpointsLastChangeTriggerTime)
	return apiequality.Semantic.DeepEqual(a, b)
}

// podAddress is the pod's address in the Service's IP family.
func podAddress(svc *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, bool) {
	v6 := false
	switch {
	case len(svc.Spec.IPFamilies) > 0:
		v6 = svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
	case svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone:
		v6 = isIPv6(svc.Spec.ClusterIP)
	default:
		v6 = isIPv6(pod.Status.PodIP)
	}
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		if isIPv6(ip.IP) != v6 {
			continue
		}
		addr := corev1.EndpointAddress{IP: ip.IP, TargetRef: &corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}}
		if pod.Spec.NodeName != "" {
			addr.NodeName = &pod.Spec.NodeName
		}
		if esutil.ShouldSetHostname(pod, svc) {
			addr.Hostname = pod.Spec.Hostname
		}
		return addr, true
	}
	return corev1.EndpointAddress{}, false
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && !a.Is4In6()
}

// truncate cuts ep down to MaxAddresses addresses, keeping ready ones
// first and spreading the cut over subsets in proportion to their size, as
// upstream does. It reports whether anything was cut.
func truncate(ep *corev1.Endpoints) bool {
	ready, notReady := 0, 0
	for _, s := range ep.Subsets {
		ready += len(s.Addresses)
		notReady += len(s.NotReadyAddresses)
	}
	if ready+notReady <= MaxAddresses {
		return false
	}
	// Either the ready addresses alone are too many (cut them, drop every
	// not-ready one), or all ready ones fit and the not-ready share the rest.
	cutReady := ready > MaxAddresses
	budget, total := MaxAddresses-ready, notReady
	if cutReady {
		budget, total = MaxAddresses, ready
	}
	left := budget
	for i := range ep.Subsets {
		s := &ep.Subsets[i]
		n := len(s.NotReadyAddresses)
		if cutReady {
			n = len(s.Addresses)
		}
		share := min(int(math.Ceil(float64(n)/float64(total)*float64(budget))), left)
		if cutReady {
			s.Addresses = s.Addresses[:min(share, len(s.Addresses))]
			s.NotReadyAddresses = nil
			left -= len(s.Addresses)
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:min(share, len(s.NotReadyAddresses))]
			left -= len(s.NotReadyAddresses)
		}
	}
	// Subsets left without addresses are dropped, as packing would.
	kept := ep.Subsets[:0]
	for _, s := range ep.Subsets {
		if len(s.Addresses)+len(s.NotReadyAddresses) > 0 {
			kept = append(kept, s)
		}
	}
	ep.Subsets = kept
	return true
}

// staleTracker remembers, per Endpoints object, the resourceVersion this
// controller replaced: finding it in the cache again means the cache is
// behind.
type staleTracker struct {
	mu sync.Mutex
	rv map[types.NamespacedName]string
}

func (s *staleTracker) mark(ep *corev1.Endpoints) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv[types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}] = ep.ResourceVersion
}

func (s *staleTracker) isStale(ep *corev1.Endpoints) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rv, ok := s.rv[types.NamespacedName{Namespace: ep.Namespace, Name: ep.Name}]
	return ok && rv == ep.ResourceVersion
}

func (s *staleTracker) forget(ns, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rv, types.NamespacedName{Namespace: ns, Name: name})
}

package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/volumes"
)

const (
	// relistInterval is how often the runtime is listed to notice
	// containers that changed state (the kubelet's PLEG period).
	relistInterval = time.Second
	// resyncInterval is how often a pod is synced with nothing happening.
	resyncInterval = 30 * time.Second
	uidIndex       = "uid"
	podIPIndex     = "podIP"
)

// podWorker serializes the syncs of one pod. Only its goroutine touches
// the fields below notify, except cancelRun (under mu).
type podWorker struct {
	uid    types.UID
	notify chan struct{}

	mu        sync.Mutex
	cancelRun context.CancelFunc

	// waiting remembers why containers are not running (pull errors,
	// configuration errors, back-off).
	waiting map[string]waitingState
	// sandboxErr is the last sandbox creation failure.
	sandboxErr error
	// lastStatus is the status last written, to skip rewrites while the
	// informer has not caught up.
	lastStatus   *corev1.PodStatus
	lastStatusRV string
	// volumeErr is the last failure to update the pod's volumes (logged
	// when it changes).
	volumeErr string
	// claims are the pod's claim volumes mounted so far (mountClaims);
	// mountErr is the last FailedMount message, mountErrAt when it was
	// said, mountFailures how many tries failed in a row.
	claims        map[string]*volumes.Claim
	mountErr      string
	mountErrAt    time.Time
	mountFailures int
}

func (w *podWorker) setWaiting(name, reason, message string) {
	if w.waiting == nil {
		w.waiting = map[string]waitingState{}
	}
	w.waiting[name] = waitingState{Reason: reason, Message: message}
}

// cancelRunning interrupts a sync that starts containers (an image pull,
// say) so that a deletion is acted on at once.
func (w *podWorker) cancelRunning() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelRun != nil {
		w.cancelRun()
	}
}

// startPods starts the pod informer, the relist loop and the workers (and
// what they use: the prober, the watches of ConfigMaps and Secrets, the
// stats sampler).
func (a *Agent) startPods(ctx context.Context, wg *sync.WaitGroup) error {
	a.probes = a.newProber()
	a.watched = newObjectCache(ctx, a.client, a.enqueue)
	a.objects = a.watched
	a.mounter = hostMounter{}
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + a.nodeName }))
	inf := factory.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{
		uidIndex: func(obj any) ([]string, error) {
			if p, ok := obj.(*corev1.Pod); ok {
				return []string{string(p.UID)}, nil
			}
			return nil, nil
		},
		podIPIndex: func(obj any) ([]string, error) {
			p, ok := obj.(*corev1.Pod)
			if !ok || p.Spec.HostNetwork {
				return nil, nil
			}
			var ips []string
			for _, ip := range p.Status.PodIPs {
				ips = append(ips, ip.IP)
			}
			return ips, nil
		},
	}); err != nil {
		return err
	}
	a.podIndexer = inf.GetIndexer()
	a.localPods.Store(&a.podIndexer)
	a.workerCtx = ctx
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				a.enqueue(p.UID)
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			if old, ok := oldObj.(*corev1.Pod); ok && old.DeletionTimestamp == nil && p.DeletionTimestamp != nil {
				a.interrupt(p.UID)
			}
			a.enqueue(p.UID)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				a.interrupt(p.UID)
				a.enqueue(p.UID)
			}
		},
	})
	if err != nil {
		return err
	}
	// Services, for the service-link variables of containers.
	svcFactory := informers.NewSharedInformerFactory(a.client, 0)
	svcLister := svcFactory.Core().V1().Services().Lister()
	svcSynced := svcFactory.Core().V1().Services().Informer().HasSynced
	a.services = func(namespace string) []*corev1.Service {
		list, err := svcLister.Services(namespace).List(labels.Everything())
		if err != nil {
			return nil
		}
		return list
	}
	factory.Start(ctx.Done())
	svcFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, svcSynced) {
		return ctx.Err()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
		svcFactory.Shutdown()
	}()
	go func() {
		defer wg.Done()
		a.relistLoop(ctx)
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		a.probes.Stop()
	}()
	go func() {
		defer wg.Done()
		a.statsLoop(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.volumeStatsLoop(ctx)
	}()
	return nil
}

// pod returns the pod with the given UID from the informer, or nil.
func (a *Agent) pod(uid types.UID) *corev1.Pod {
	objs, err := a.podIndexer.ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil
	}
	return objs[0].(*corev1.Pod)
}

// enqueue makes the pod's worker sync, starting a worker if there is none.
func (a *Agent) enqueue(uid types.UID) {
	a.workersMu.Lock()
	defer a.workersMu.Unlock()
	if a.stopping || a.workerCtx == nil {
		return
	}
	w, ok := a.workers[uid]
	if !ok {
		w = &podWorker{uid: uid, notify: make(chan struct{}, 1)}
		a.workers[uid] = w
		a.workersWG.Add(1)
		go a.runWorker(a.workerCtx, w)
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (a *Agent) interrupt(uid types.UID) {
	a.workersMu.Lock()
	w := a.workers[uid]
	a.workersMu.Unlock()
	if w != nil {
		w.cancelRunning()
	}
}

// stopWorkers waits for the workers to return (ctx is done). Pods keep
// running.
func (a *Agent) stopWorkers() {
	a.workersMu.Lock()
	a.stopping = true
	a.workersMu.Unlock()
	a.workersWG.Wait()
}

func (a *Agent) runWorker(ctx context.Context, w *podWorker) {
	defer a.workersWG.Done()
	timer := time.NewTimer(resyncInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.notify:
		case <-timer.C:
		}
		requeue, done := a.syncPod(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if done {
			a.workersMu.Lock()
			select {
			case <-w.notify:
				// Something happened meanwhile: sync again.
				a.workersMu.Unlock()
				requeue = time.Millisecond
			default:
				delete(a.workers, w.uid)
				a.workersMu.Unlock()
				return
			}
		}
		if requeue <= 0 || requeue > resyncInterval {
			requeue = resyncInterval
		}
		timer.Reset(requeue)
	}
}

// relistLoop lists the runtime's sandboxes and containers every second and
// wakes the workers of pods whose containers changed state, including pods
// the API no longer knows (the first round finds those left from before a
// restart, so they are cleaned up).
func (a *Agent) relistLoop(ctx context.Context) {
	prev := map[types.UID]string{}
	t := time.NewTicker(relistInterval)
	defer t.Stop()
	for {
		cur, err := a.relist(ctx)
		if err == nil {
			for uid, fp := range cur {
				if prev[uid] != fp {
					a.enqueue(uid)
				}
			}
			for uid := range prev {
				if _, ok := cur[uid]; !ok {
					a.enqueue(uid)
				}
			}
			prev = cur
		} else if ctx.Err() == nil {
			slog.Warn("listing the runtime's containers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// relist returns a fingerprint of the runtime state of every pod this agent
// runs.
func (a *Agent) relist(ctx context.Context) (map[types.UID]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sel := map[string]string{labelManagedBy: managedBy}
	sandboxes, err := a.rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	containers, err := a.rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	parts := map[types.UID][]string{}
	for _, s := range sandboxes {
		uid := types.UID(s.Labels[labelPodUID])
		parts[uid] = append(parts[uid], fmt.Sprintf("s%s=%d", s.Id, s.State))
	}
	for _, c := range containers {
		uid := types.UID(c.Labels[labelPodUID])
		parts[uid] = append(parts[uid], fmt.Sprintf("c%s=%d", c.Id, c.State))
	}
	out := make(map[types.UID]string, len(parts))
	for uid, p := range parts {
		if uid == "" {
			continue
		}
		sort.Strings(p)
		out[uid] = strings.Join(p, ",")
	}
	return out, nil
}

// namespaceOf is the namespace of the local pod with this IP (for cluster
// DNS's search-path completion); false before the pods are known.
func (a *Agent) namespaceOf(ip netip.Addr) (string, bool) {
	idx, _ := a.localPods.Load().(*cache.Indexer)
	if idx == nil {
		return "", false
	}
	objs, err := (*idx).ByIndex(podIPIndex, ip.String())
	if err != nil || len(objs) == 0 {
		return "", false
	}
	return objs[0].(*corev1.Pod).Namespace, true
}

package apiserver

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/registry/core"
	"github.com/havre/havre/internal/storage"
)

func init() { registerPodAdmitter("Priority", admitPriority) }

// systemPriorityClassDescriptions are the built-in classes' descriptions,
// as kube-apiserver creates them.
var systemPriorityClassDescriptions = map[string]string{
	core.SystemClusterCritical: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
	core.SystemNodeCritical:    "Used for system critical pods that must not be moved from their current node.",
}

// ensureSystemPriorityClasses creates the built-in PriorityClasses
// (system-cluster-critical, system-node-critical) when they are missing.
func (s *Server) ensureSystemPriorityClasses(ctx context.Context) error {
	h := s.handler("scheduling.k8s.io", "v1", "priorityclasses")
	if h == nil {
		return nil
	}
	for _, name := range []string{core.SystemClusterCritical, core.SystemNodeCritical} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name},
			Value: core.SystemPriorityClasses[name], Description: systemPriorityClassDescriptions[name]}
		if err := ensure(ctx, h, pc); err != nil {
			return fmt.Errorf("creating priority class %s: %w", name, err)
		}
	}
	return nil
}

// admitPriority is kube-apiserver's Priority admission plugin for pod
// creation: spec.priorityClassName resolves to spec.priority and
// spec.preemptionPolicy; a pod naming no class gets the globalDefault
// class (the lowest-valued one when several are) or priority 0; a missing
// class is refused with 403 Forbidden, and so is a spec.priority that is
// not the computed one.
func admitPriority(s *Server, ctx context.Context, pod *corev1.Pod) error {
	forbidden := func(err error) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, pod.Name, err)
	}
	lower := corev1.PreemptLowerPriority
	var (
		name     = pod.Spec.PriorityClassName
		priority int32
		policy   = &lower
	)
	h := s.handler("scheduling.k8s.io", "v1", "priorityclasses")
	switch {
	case name == "" && h == nil:
		// Without PriorityClasses served there is no default: zero.
	case name == "":
		pc, err := priorityClassesOf(s).globalDefault(ctx, h)
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("failed to get default priority class: %w", err))
		}
		if pc != nil {
			name, priority = pc.Name, pc.Value
			if pc.PreemptionPolicy != nil {
				policy = pc.PreemptionPolicy
			}
		}
	default:
		var obj runtime.Object
		var err error = apierrors.NewNotFound(schema.GroupResource{}, name)
		if h != nil {
			obj, err = h.objs.get(ctx, "", name)
		}
		switch {
		case err == nil:
			pc := obj.(*schedulingv1.PriorityClass)
			priority = pc.Value
			if pc.PreemptionPolicy != nil {
				policy = pc.PreemptionPolicy
			}
		case apierrors.IsNotFound(err):
			value, ok := core.SystemPriorityClasses[name]
			if !ok {
				return forbidden(fmt.Errorf("no PriorityClass with name %v was found", name))
			}
			priority = value
		default:
			return apierrors.NewInternalError(fmt.Errorf("failed to get PriorityClass with name %s: %w", name, err))
		}
	}
	// As upstream: a priority in the spec must be the one computed, and a
	// preemption policy other than the default the class's.
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return forbidden(fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	if p := pod.Spec.PreemptionPolicy; p != nil && *p != *policy && *p != corev1.PreemptLowerPriority {
		return forbidden(fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *p, *policy))
	}
	pod.Spec.PriorityClassName = name
	pod.Spec.Priority = new(priority)
	pod.Spec.PreemptionPolicy = new(*policy)
	return nil
}

// admitPriorityClass refuses a second globalDefault PriorityClass, as the
// Priority admission plugin does: creating one, or marking another class
// default, while a default exists is forbidden. old is nil on create.
func (s *Server) admitPriorityClass(ctx context.Context, h *resourceHandler, obj, old runtime.Object) error {
	pc, ok := obj.(*schedulingv1.PriorityClass)
	if !ok || !pc.GlobalDefault {
		return nil
	}
	dpc, err := priorityClassesOf(s).globalDefault(ctx, h)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("failed to get default priority class: %w", err))
	}
	if dpc != nil && (old == nil || dpc.Name != pc.Name) {
		return apierrors.NewForbidden(h.gr(), pc.Name,
			fmt.Errorf("PriorityClass %v is already marked as default. Only one default can exist", dpc.Name))
	}
	return nil
}

// priorityClassCache keeps the decoded PriorityClasses by store key and
// revision, so the global default is found without decoding every class
// on every pod creation.
type priorityClassCache struct {
	mu      sync.Mutex
	classes map[string]cachedPriorityClass
}

type cachedPriorityClass struct {
	rev int64
	pc  *schedulingv1.PriorityClass
}

// priorityClassCaches holds each server's cache (a map rather than a
// Server field keeps this admission step in its own file).
var priorityClassCaches sync.Map // *Server → *priorityClassCache

func priorityClassesOf(s *Server) *priorityClassCache {
	c, _ := priorityClassCaches.LoadOrStore(s, &priorityClassCache{})
	return c.(*priorityClassCache)
}

// globalDefault returns the globalDefault class with the lowest value, or
// nil.
func (c *priorityClassCache) globalDefault(ctx context.Context, h *resourceHandler) (*schedulingv1.PriorityClass, error) {
	res, err := h.objs.store.List(ctx, h.objs.listPrefix(""), storage.ListOptions{})
	if err != nil {
		return nil, h.objs.storageError(err, "")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.classes == nil {
		c.classes = map[string]cachedPriorityClass{}
	}
	seen := make(map[string]bool, len(res.KVs))
	var best *schedulingv1.PriorityClass
	for _, kv := range res.KVs {
		seen[kv.Key] = true
		cached, ok := c.classes[kv.Key]
		if !ok || cached.rev != kv.ModRevision {
			obj, err := h.objs.decode(kv)
			if err != nil {
				return nil, err
			}
			cached = cachedPriorityClass{rev: kv.ModRevision, pc: obj.(*schedulingv1.PriorityClass)}
			c.classes[kv.Key] = cached
		}
		if cached.pc.GlobalDefault && (best == nil || cached.pc.Value < best.Value) {
			best = cached.pc
		}
	}
	for k := range c.classes {
		if !seen[k] {
			delete(c.classes, k)
		}
	}
	return best, nil
}

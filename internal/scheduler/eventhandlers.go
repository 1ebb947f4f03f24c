package scheduler

import (
	"fmt"
	"log/slog"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/scheduler/framework"
)

// addEventHandlers feeds the cache from nodes and assigned pods, and the
// queue from this scheduler's pending pods; cluster events move the
// unschedulable pods they may help.
func (s *Scheduler) addEventHandlers(factory informers.SharedInformerFactory) error {
	pods := factory.Core().V1().Pods().Informer()
	nodes := factory.Core().V1().Nodes().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	s.synced = append(s.synced, pods.HasSynced, nodes.HasSynced, namespaces.HasSynced)
	// The PodDisruptionBudgets preemption reads.
	s.synced = append(s.synced, factory.Policy().V1().PodDisruptionBudgets().Informer().HasSynced)

	if _, err := pods.AddEventHandler(toolscache.FilteringResourceEventHandler{
		// Finished pods free their node, as the field selector
		// status.phase!=Succeeded,status.phase!=Failed of kube-scheduler's
		// pod informer does: a pod finishing is a delete here.
		FilterFunc: func(obj any) bool {
			pod := podOf(obj)
			return pod != nil && pod.Spec.NodeName != "" && !terminal(pod)
		},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    s.addPodToCache,
			UpdateFunc: s.updatePodInCache,
			DeleteFunc: s.deletePodFromCache,
		},
	}); err != nil {
		return err
	}
	if _, err := pods.AddEventHandler(toolscache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			pod := podOf(obj)
			return pod != nil && pod.Spec.NodeName == "" && pod.Spec.SchedulerName == s.cfg.SchedulerName && !terminal(pod)
		},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { s.Queue.Add(obj.(*corev1.Pod)) },
			UpdateFunc: func(oldObj, newObj any) {
				old, pod := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
				if old.ResourceVersion == pod.ResourceVersion || s.Cache.IsAssumed(pod) {
					return
				}
				s.Queue.Update(old, pod)
			},
			DeleteFunc: func(obj any) {
				if pod := podOf(obj); pod != nil {
					s.Queue.Delete(pod)
				}
			},
		},
	}); err != nil {
		return err
	}
	if _, err := nodes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			s.Cache.AddNode(obj.(*corev1.Node))
			s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventNodeAdd)
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, node := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			s.Cache.UpdateNode(old, node)
			if change := nodeChange(old, node); change != 0 {
				s.Queue.MoveAllToActiveOrBackoffQueue(framework.ClusterEvent{Resource: framework.Node, ActionType: change, Label: "NodeUpdate"})
			}
		},
		DeleteFunc: func(obj any) {
			if node := nodeOf(obj); node != nil {
				s.Cache.RemoveNode(node)
			}
		},
	}); err != nil {
		return err
	}
	if err := s.addStorageEventHandlers(factory); err != nil {
		return err
	}
	_, err := namespaces.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventNamespaceAddOrLabel) },
		UpdateFunc: func(oldObj, newObj any) {
			if !reflect.DeepEqual(oldObj.(*corev1.Namespace).Labels, newObj.(*corev1.Namespace).Labels) {
				s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventNamespaceAddOrLabel)
			}
		},
	})
	return err
}

// addStorageEventHandlers retries the pods waiting on volumes when claims,
// volumes, classes or published capacities come or change (and pods
// refused for a ReadWriteOncePod claim when a claim goes).
func (s *Scheduler) addStorageEventHandlers(factory informers.SharedInformerFactory) error {
	for _, w := range []struct {
		informer toolscache.SharedIndexInformer
		resource framework.EventResource
		actions  framework.ActionType
	}{
		{factory.Core().V1().PersistentVolumeClaims().Informer(), framework.PersistentVolumeClaim, framework.All},
		{factory.Core().V1().PersistentVolumes().Informer(), framework.PersistentVolume, framework.All},
		{factory.Storage().V1().StorageClasses().Informer(), framework.StorageClass, framework.Add | framework.UpdateObject},
		{factory.Storage().V1().CSIStorageCapacities().Informer(), framework.CSIStorageCapacity, framework.Add | framework.UpdateObject},
	} {
		s.synced = append(s.synced, w.informer.HasSynced)
		resource, actions := w.resource, w.actions
		move := func(a framework.ActionType, label string) {
			if actions&a != 0 {
				s.Queue.MoveAllToActiveOrBackoffQueue(framework.ClusterEvent{Resource: resource, ActionType: a, Label: string(resource) + label})
			}
		}
		if _, err := w.informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { move(framework.Add, "Add") },
			UpdateFunc: func(oldObj, newObj any) {
				if o, ok := oldObj.(metav1.Object); ok {
					if n, ok := newObj.(metav1.Object); ok && o.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
						return // a resync
					}
				}
				move(framework.UpdateObject, "Update")
			},
			DeleteFunc: func(any) { move(framework.Delete, "Delete") },
		}); err != nil {
			return err
		}
	}
	return nil
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func podOf(obj any) *corev1.Pod {
	switch t := obj.(type) {
	case *corev1.Pod:
		return t
	case toolscache.DeletedFinalStateUnknown:
		p, _ := t.Obj.(*corev1.Pod)
		return p
	}
	return nil
}

func nodeOf(obj any) *corev1.Node {
	switch t := obj.(type) {
	case *corev1.Node:
		return t
	case toolscache.DeletedFinalStateUnknown:
		n, _ := t.Obj.(*corev1.Node)
		return n
	}
	return nil
}

func (s *Scheduler) addPodToCache(obj any) {
	pod := obj.(*corev1.Pod)
	if err := s.Cache.AddPod(pod); err != nil {
		slog.Error("scheduler: adding a pod to the cache", "pod", klogKey(pod), "err", err)
	}
	s.Queue.DeleteNominatedPodIfExists(pod)
	s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodAdd)
}

func (s *Scheduler) updatePodInCache(oldObj, newObj any) {
	old, pod := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == pod.ResourceVersion {
		return
	}
	if err := s.Cache.UpdatePod(old, pod); err != nil {
		slog.Error("scheduler: updating a pod in the cache", "pod", klogKey(pod), "err", err)
	}
	var change framework.ActionType
	if !reflect.DeepEqual(old.Labels, pod.Labels) {
		change |= framework.UpdatePodLabel
	}
	if podScaledDown(old, pod) {
		change |= framework.UpdatePodScaleDown
	}
	if change != 0 {
		s.Queue.MoveAllToActiveOrBackoffQueue(framework.ClusterEvent{Resource: framework.Pod, ActionType: change, Label: "AssignedPodUpdate"})
	}
}

func (s *Scheduler) deletePodFromCache(obj any) {
	pod := podOf(obj)
	if pod == nil {
		return
	}
	if err := s.Cache.RemovePod(pod); err != nil {
		slog.Error("scheduler: removing a pod from the cache", "pod", klogKey(pod), "err", err)
	}
	s.Queue.MoveAllToActiveOrBackoffQueue(framework.EventAssignedPodDelete)
}

// podScaledDown reports whether a pod's requests shrank.
func podScaledDown(old, pod *corev1.Pod) bool {
	if len(old.Spec.Containers) == len(pod.Spec.Containers) && reflect.DeepEqual(old.Spec.Resources, pod.Spec.Resources) {
		same := true
		for i := range pod.Spec.Containers {
			if !reflect.DeepEqual(old.Spec.Containers[i].Resources, pod.Spec.Containers[i].Resources) {
				same = false
				break
			}
		}
		if same {
			return false
		}
	}
	o, n := framework.NewPodInfo(old).Requests, framework.NewPodInfo(pod).Requests
	return n.MilliCPU < o.MilliCPU || n.Memory < o.Memory || n.EphemeralStorage < o.EphemeralStorage
}

// nodeChange tells what changed in a node that plugins read.
func nodeChange(old, node *corev1.Node) framework.ActionType {
	var a framework.ActionType
	if !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		a |= framework.UpdateNodeAllocatable
	}
	if !reflect.DeepEqual(old.Labels, node.Labels) {
		a |= framework.UpdateNodeLabel
	}
	if !reflect.DeepEqual(old.Spec.Taints, node.Spec.Taints) {
		a |= framework.UpdateNodeTaint
	}
	if old.Spec.Unschedulable != node.Spec.Unschedulable {
		a |= framework.UpdateNodeSpecUnschedulable
	}
	if conditionsKey(old) != conditionsKey(node) {
		a |= framework.UpdateNodeCondition
	}
	return a
}

func conditionsKey(n *corev1.Node) string {
	key := ""
	for _, c := range n.Status.Conditions {
		key += fmt.Sprintf("%s=%s;", c.Type, c.Status)
	}
	return key
}

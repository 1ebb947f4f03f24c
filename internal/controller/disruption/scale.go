package disruption

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// controllerScale is a pod controller and its desired replicas.
type controllerScale struct {
	uid   types.UID
	scale int32
}

// finder reads the scale of a pod's controller when it is of the kind it
// knows; nil when it is not (or is gone, or is another object of that name).
type finder func(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error)

// finders are tried in order, as upstream's: the built-in workloads from
// informers, then any resource with a scale subresource.
func (c *Controller) finders() []finder {
	return []finder{c.replicationController, c.deployment, c.replicaSet, c.statefulSet, c.scaleSubresource}
}

// expectedScale sums the desired replicas of the controllers of pods. Pods
// without a controller are returned as unmanaged; a controller no finder
// knows is an error.
func (c *Controller) expectedScale(ctx context.Context, pods []*corev1.Pod) (int32, []string, error) {
	scales := map[types.UID]int32{}
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if _, ok := scales[ref.UID]; ok {
			continue
		}
		found := false
		for _, find := range c.finders() {
			cs, err := find(ctx, ref, pod.Namespace)
			if err != nil {
				return 0, nil, err
			}
			if cs != nil {
				scales[cs.uid] = cs.scale
				found = true
				break
			}
		}
		if !found {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
	}
	var total int32
	for _, n := range scales {
		total += n
	}
	return total, unmanaged, nil
}

// isKind reports whether ref is of kind in one of groups.
func isKind(ref *metav1.OwnerReference, kind string, groups ...string) (bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false, err
	}
	return ref.Kind == kind && slices.Contains(groups, gv.Group), nil
}

func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

func (c *Controller) replicationController(_ context.Context, ref *metav1.OwnerReference, ns string) (*controllerScale, error) {
	if ok, err := isKind(ref, "ReplicationController", ""); !ok || err != nil || c.rcLister == nil {
		return nil, err
	}
	rc, err := c.rcLister.ReplicationControllers(ns).Get(ref.Name)
	if err != nil || rc.UID != ref.UID {
		return nil, nil
	}
	return &controllerScale{rc.UID, replicas(rc.Spec.Replicas)}, nil
}

// replicaSet is a ReplicaSet not controlled by a Deployment.
func (c *Controller) replicaSet(_ context.Context, ref *metav1.OwnerReference, ns string) (*controllerScale, error) {
	if ok, err := isKind(ref, "ReplicaSet", "apps", "extensions"); !ok || err != nil || c.rsLister == nil {
		return nil, err
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil, nil
	}
	if owner := metav1.GetControllerOf(rs); owner != nil && owner.Kind == "Deployment" {
		return nil, nil
	}
	return &controllerScale{rs.UID, replicas(rs.Spec.Replicas)}, nil
}

// deployment is the Deployment controlling the pod's ReplicaSet.
func (c *Controller) deployment(_ context.Context, ref *metav1.OwnerReference, ns string) (*controllerScale, error) {
	if ok, err := isKind(ref, "ReplicaSet", "apps", "extensions"); !ok || err != nil || c.rsLister == nil || c.dLister == nil {
		return nil, err
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil, nil
	}
	owner := metav1.GetControllerOf(rs)
	if owner == nil {
		return nil, nil
	}
	if ok, err := isKind(owner, "Deployment", "apps", "extensions"); !ok || err != nil {
		return nil, err
	}
	d, err := c.dLister.Deployments(ns).Get(owner.Name)
	if err != nil || d.UID != owner.UID {
		return nil, nil
	}
	return &controllerScale{d.UID, replicas(d.Spec.Replicas)}, nil
}

func (c *Controller) statefulSet(_ context.Context, ref *metav1.OwnerReference, ns string) (*controllerScale, error) {
	if ok, err := isKind(ref, "StatefulSet", "apps"); !ok || err != nil || c.ssLister == nil {
		return nil, err
	}
	ss, err := c.ssLister.StatefulSets(ns).Get(ref.Name)
	if err != nil || ss.UID != ref.UID {
		return nil, nil
	}
	return &controllerScale{ss.UID, replicas(ss.Spec.Replicas)}, nil
}

// scaleSubresource reads the scale subresource of any other controller.
func (c *Controller) scaleSubresource(ctx context.Context, ref *metav1.OwnerReference, ns string) (*controllerScale, error) {
	if c.mapper == nil || c.scales == nil {
		return nil, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, err
	}
	mapping, err := c.mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		return nil, err
	}
	gr := mapping.Resource.GroupResource()
	s, err := c.scales.Scales(ns).Get(ctx, gr, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Either the controller is gone, or its kind has no scale.
		if has, derr := c.hasScale(mapping.Resource); derr != nil {
			return nil, derr
		} else if !has {
			return nil, fmt.Errorf("%s does not implement the scale subresource", gr)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s.UID != ref.UID {
		return nil, nil
	}
	return &controllerScale{s.UID, s.Spec.Replicas}, nil
}

// hasScale asks discovery whether the resource has a scale subresource.
func (c *Controller) hasScale(gvr schema.GroupVersionResource) (bool, error) {
	if c.discovery == nil {
		return false, nil
	}
	list, err := c.discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource+"/scale" && r.Kind == "Scale" {
			return true, nil
		}
	}
	return false, nil
}

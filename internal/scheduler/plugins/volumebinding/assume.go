package volumebinding

import (
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// assumeCache holds the choices of the pods between Reserve and the end
// of their PreBind: the volumes they will pre-bind and the claims they
// will have provisioned on a node, so that the next pods neither take
// the same volume nor count the same capacity.
type assumeCache struct {
	mu sync.RWMutex
	// volumes: volume name -> the pod that takes it.
	volumes map[string]types.UID
	// provisions: pod -> its claims to provision.
	provisions map[types.UID][]assumedClaim
	byPod      map[types.UID][]string
}

type assumedClaim struct {
	namespace, name, node, class string
	size                         int64
}

func newAssumeCache() *assumeCache {
	return &assumeCache{volumes: map[string]types.UID{}, provisions: map[types.UID][]assumedClaim{}, byPod: map[types.UID][]string{}}
}

// assume records a pod's choices on a node; a volume taken by another
// pod meanwhile is an error (the pod is retried).
func (c *assumeCache) assume(pod *corev1.Pod, node string, vols *podVolumes) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(pod.UID)
	for _, b := range vols.staticBindings {
		if other, ok := c.volumes[b.pv.Name]; ok && other != pod.UID {
			c.forgetLocked(pod.UID)
			return fmt.Errorf("persistentvolume %q was just chosen for another pod: the pod is retried", b.pv.Name)
		}
		c.volumes[b.pv.Name] = pod.UID
		c.byPod[pod.UID] = append(c.byPod[pod.UID], b.pv.Name)
	}
	for _, ci := range vols.provisions {
		c.provisions[pod.UID] = append(c.provisions[pod.UID],
			assumedClaim{namespace: ci.pvc.Namespace, name: ci.pvc.Name, node: node, class: ci.class.Name, size: ci.size})
	}
	return nil
}

// forget drops a pod's choices.
func (c *assumeCache) forget(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(pod.UID)
}

func (c *assumeCache) forgetLocked(uid types.UID) {
	for _, name := range c.byPod[uid] {
		if c.volumes[name] == uid {
			delete(c.volumes, name)
		}
	}
	delete(c.byPod, uid)
	delete(c.provisions, uid)
}

// assumedVolumes are the volumes other pods took, for the matching to
// leave out; the map is the caller's.
func (c *assumeCache) assumedVolumes(pod *corev1.Pod) map[string]*corev1.PersistentVolume {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]*corev1.PersistentVolume, len(c.volumes))
	for name, uid := range c.volumes {
		if uid != pod.UID {
			out[name] = &corev1.PersistentVolume{}
		}
	}
	return out
}

// pendingSize sums the sizes of the claims other pods will have
// provisioned on node in class, but those skip tells (provisioned
// already, or the pod's own).
func (c *assumeCache) pendingSize(pod *corev1.Pod, node, class string, skip func(namespace, name string) bool) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var total int64
	for uid, claims := range c.provisions {
		if uid == pod.UID {
			continue
		}
		for _, a := range claims {
			if a.node == node && a.class == class && !skip(a.namespace, a.name) {
				total += a.size
			}
		}
	}
	return total
}

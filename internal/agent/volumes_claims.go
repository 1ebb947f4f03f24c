package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/agent/volumes"
)

// Retrying a pod's claim volumes that cannot be mounted yet: the first
// retry soon (a claim is usually bound within a second of the pod being
// scheduled), doubling up to a few seconds; the FailedMount event repeats
// every failedMountEvery while the reason stays the same (the kubelet's
// mount wait times out after about two minutes and says so again).
const (
	mountRetryFirst  = 200 * time.Millisecond
	mountRetryMax    = 5 * time.Second
	failedMountEvery = 2 * time.Minute
)

// mountedClaim is a claim volume mounted for a pod, for its volume stats.
type mountedClaim struct {
	namespace, pod string
	claim          *volumes.Claim
}

// hasClaims reports whether a pod has persistentVolumeClaim or ephemeral
// volumes.
func hasClaims(pod *corev1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if _, _, _, ok := volumes.ClaimOf(pod, &pod.Spec.Volumes[i]); ok {
			return true
		}
	}
	return false
}

// claimGetter reads claims and volumes (the API unless a test set one).
func (a *Agent) claimGetter() volumes.Getter {
	if a.claims != nil {
		return a.claims
	}
	return volumes.ClientGetter{Client: a.client, NodeName: a.nodeName}
}

// mountClaims makes a pod's claim volumes ready, as the kubelet's volume
// manager does before the pod's sandbox is created: each claim must exist,
// be bound and not be deleted (an ephemeral one must be the pod's), its
// PersistentVolume must be a local or hostPath one whose directory
// exists, and the pod's fsGroup is applied to a local one. Until all are,
// the pod stays ContainerCreating with a FailedMount event saying why, and
// mountClaims returns when to try again (with back-off; the pod's own
// worker waits, not the others'). Mounted claims are kept for the pod's
// life (their volume's directory is what containers get). setUp is false
// for a pod whose containers ran already (adopted after a restart of the
// agent): its volumes were set up then, and the fsGroup is not walked
// again under running containers, as the kubelet skips the setup of a
// volume mounted already.
func (a *Agent) mountClaims(ctx context.Context, w *podWorker, pod *corev1.Pod, setUp bool) (time.Duration, bool) {
	if !hasClaims(pod) {
		return 0, true
	}
	if w.claims == nil {
		w.claims = map[string]*volumes.Claim{}
	}
	var failed, errs []string
	added := false
	fsGroup, policy := podFSGroup(pod)
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if _, _, _, ok := volumes.ClaimOf(pod, vol); !ok || w.claims[vol.Name] != nil {
			continue
		}
		c, err := volumes.Resolve(ctx, a.claimGetter(), pod, vol)
		if err == nil && c.Ownership && setUp {
			var walked bool
			start := time.Now()
			walked, err = volumes.SetOwnership(c.Path, fsGroup, policy, c.ReadOnly)
			if err != nil {
				err = fmt.Errorf("MountVolume.SetUp failed for volume %q : %w", c.PV.Name, err)
			} else if walked && time.Since(start) > 30*time.Second {
				slog.Info("setting a volume's ownership took long; fsGroupChangePolicy OnRootMismatch would skip it",
					"pod", pod.Namespace+"/"+pod.Name, "volume", vol.Name, "took", time.Since(start).Round(time.Second).String())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return time.Millisecond, false
			}
			failed = append(failed, vol.Name)
			errs = append(errs, err.Error())
			continue
		}
		w.claims[vol.Name] = c
		added = true
	}
	if len(failed) == 0 {
		w.mountErr, w.mountFailures = "", 0
		if added {
			a.publishClaims(pod, w.claims)
		}
		return 0, true
	}
	var unmounted []string
	for i := range pod.Spec.Volumes {
		if w.claims[pod.Spec.Volumes[i].Name] == nil {
			unmounted = append(unmounted, pod.Spec.Volumes[i].Name)
		}
	}
	sort.Strings(unmounted)
	sort.Strings(failed)
	msg := fmt.Sprintf("Unable to attach or mount volumes: unmounted volumes=[%s], unattached volumes=[], failed to process volumes=[%s]: %s",
		strings.Join(unmounted, " "), strings.Join(failed, " "), strings.Join(errs, "; "))
	now := a.now()
	if msg != w.mountErr || now.Sub(w.mountErrAt) >= failedMountEvery {
		a.event(pod, nil, false, corev1.EventTypeWarning, "FailedMount", "%s", msg)
		slog.Info("waiting for a pod's volumes", "pod", pod.Namespace+"/"+pod.Name, "reason", strings.Join(errs, "; "))
		w.mountErr, w.mountErrAt = msg, now
	}
	delay := mountRetryFirst << min(w.mountFailures, 8)
	w.mountFailures++
	return min(delay, mountRetryMax), false
}

// publishClaims records a pod's mounted claims for the volume stats.
func (a *Agent) publishClaims(pod *corev1.Pod, claims map[string]*volumes.Claim) {
	list := make([]mountedClaim, 0, len(claims))
	for _, c := range claims {
		list = append(list, mountedClaim{namespace: pod.Namespace, pod: pod.Name, claim: c})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].claim.Volume < list[j].claim.Volume })
	a.mountedClaims.Store(pod.UID, list)
}

// forgetClaims drops a pod's claims from the volume stats.
func (a *Agent) forgetClaims(uid types.UID) {
	a.mountedClaims.Delete(uid)
	a.stats.mu.Lock()
	delete(a.stats.volumes, uid)
	a.stats.mu.Unlock()
}

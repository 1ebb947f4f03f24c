package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// updatableVolumeDir is where a volume whose content follows its sources
// (configMap, secret, downwardAPI, projected) lives under the pod's
// directory, or "" for other volumes.
func updatableVolumeDir(podDir string, vol corev1.Volume) string {
	var plugin string
	switch {
	case vol.ConfigMap != nil:
		plugin = volConfigMap
	case vol.Secret != nil:
		plugin = volSecret
	case vol.DownwardAPI != nil:
		plugin = volDownwardAPI
	case vol.Projected != nil:
		plugin = volProjected
	default:
		return ""
	}
	return filepath.Join(podDir, "volumes", plugin, vol.Name)
}

// refreshVolumes brings the content of a running pod's configMap, secret,
// downwardAPI and projected volumes up to date with their sources, as the
// kubelet's periodic remount does. It runs on every sync of the pod (its
// resync, a change of the pod, of a ConfigMap or Secret it uses); files
// change atomically, and subPath mounts, bound to the old files, keep them.
// A source gone missing leaves the volume as it was.
func (a *Agent) refreshVolumes(ctx context.Context, w *podWorker, pod *corev1.Pod, podIPs []string) {
	dir := podDir(a.dirs.pods, pod)
	_, hostIPs, alloc := a.facts()
	env := envInputs{podIPs: podIPs, hostIPs: hostIPs, nodeName: a.nodeName, allocatable: alloc, objects: a.objects}
	v := volumeSetup{dir: dir, objects: a.objects, env: env, refresh: true}
	var errs []string
	for _, vol := range pod.Spec.Volumes {
		p := updatableVolumeDir(dir, vol)
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			continue // not set up yet: the next container start does it
		}
		if _, err := v.prepareOne(ctx, pod, vol); err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Sprintf("volume %q: %v", vol.Name, err))
		}
	}
	msg := strings.Join(errs, "; ")
	if msg != w.volumeErr && msg != "" {
		slog.Warn("updating a pod's volumes", "pod", pod.Namespace+"/"+pod.Name, "err", msg)
	}
	w.volumeErr = msg
}

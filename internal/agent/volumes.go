package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/volumes"
)

// Volume plugin directory names under a pod's directory, as the kubelet
// names them.
const (
	volEmptyDir    = "kubernetes.io~empty-dir"
	volConfigMap   = "kubernetes.io~configmap"
	volSecret      = "kubernetes.io~secret"
	volDownwardAPI = "kubernetes.io~downward-api"
	volProjected   = "kubernetes.io~projected"
)

// podDir is where a pod's volumes and termination-message files live.
func podDir(podsRoot string, pod *corev1.Pod) string {
	return filepath.Join(podsRoot, string(pod.UID))
}

// volumeSetup prepares a pod's volumes on the host.
type volumeSetup struct {
	dir     string // the pod's directory
	objects objectSource
	env     envInputs
	// mounter mounts memory-backed volumes (nil: plain directories).
	mounter mounter
	// refresh: only rewrite the content of volumes set up already (see
	// refreshVolumes).
	refresh bool
	// claims are the pod's claim volumes, resolved and mounted (see
	// mountClaims), by volume name.
	claims map[string]*volumes.Claim
}

// podFSGroup is the pod's fsGroup and fsGroupChangePolicy.
func podFSGroup(pod *corev1.Pod) (*int64, *corev1.PodFSGroupChangePolicy) {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup, sc.FSGroupChangePolicy
	}
	return nil, nil
}

// prepare makes every volume of the pod ready and returns the host path of
// each. Volume types the agent does not support are configuration errors.
func (v volumeSetup) prepare(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	paths := map[string]string{}
	for _, vol := range pod.Spec.Volumes {
		p, err := v.prepareOne(ctx, pod, vol)
		if err != nil {
			return nil, err
		}
		paths[vol.Name] = p
	}
	return paths, nil
}

func (v volumeSetup) prepareOne(ctx context.Context, pod *corev1.Pod, vol corev1.Volume) (string, error) {
	src := vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		p := filepath.Join(v.dir, "volumes", volEmptyDir, vol.Name)
		_, err := os.Lstat(p)
		fresh := errors.Is(err, fs.ErrNotExist)
		if src.EmptyDir.Medium == corev1.StorageMediumMemory && v.mounter != nil {
			if err := v.ensureTmpfs(p, memoryVolumeSize(pod, src.EmptyDir.SizeLimit, v.env.allocatable)); err != nil {
				return "", err
			}
		}
		if err := os.MkdirAll(p, 0o777); err != nil {
			return "", err
		}
		if !fresh {
			return p, nil // set up for an earlier container: keep what it is
		}
		if err := os.Chmod(p, 0o777); err != nil {
			return "", err
		}
		fsGroup, policy := podFSGroup(pod)
		if _, err := volumes.SetOwnership(p, fsGroup, policy, false); err != nil {
			return "", err
		}
		return p, nil
	case src.PersistentVolumeClaim != nil, src.Ephemeral != nil:
		c := v.claims[vol.Name]
		if c == nil {
			return "", fmt.Errorf("volume %q: its claim is not mounted yet", vol.Name)
		}
		return c.Path, nil
	case src.HostPath != nil:
		return hostPathVolume(src.HostPath)
	case src.ConfigMap != nil:
		s := src.ConfigMap
		data, err := v.configMapData(ctx, pod.Namespace, s.Name, deref(s.Optional))
		if err != nil {
			return "", err
		}
		files, err := projectKeys(data, s.Items, s.DefaultMode, deref(s.Optional), "configmap "+s.Name)
		if err != nil {
			return "", err
		}
		return v.writeFiles(pod, filepath.Join(volConfigMap, vol.Name), files, false)
	case src.Secret != nil:
		s := src.Secret
		data, err := v.secretData(ctx, pod.Namespace, s.SecretName, deref(s.Optional))
		if err != nil {
			return "", err
		}
		files, err := projectKeys(data, s.Items, s.DefaultMode, deref(s.Optional), "secret "+s.SecretName)
		if err != nil {
			return "", err
		}
		return v.writeFiles(pod, filepath.Join(volSecret, vol.Name), files, true)
	case src.DownwardAPI != nil:
		files, err := downwardAPIFiles(pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode, v.env)
		if err != nil {
			return "", err
		}
		return v.writeFiles(pod, filepath.Join(volDownwardAPI, vol.Name), files, false)
	case src.Projected != nil:
		files, err := v.projectedFiles(ctx, pod, src.Projected)
		if err != nil {
			return "", err
		}
		return v.writeFiles(pod, filepath.Join(volProjected, vol.Name), files, true)
	}
	return "", configErrorf("volume %q: this node does not support its type yet (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim, ephemeral)", vol.Name)
}

// configMapData returns a ConfigMap's keys (an optional one missing has
// none).
func (v volumeSetup) configMapData(ctx context.Context, namespace, name string, optional bool) (map[string][]byte, error) {
	cm, err := v.objects.ConfigMap(ctx, namespace, name)
	switch {
	case apierrors.IsNotFound(err) && optional:
		return map[string][]byte{}, nil
	case apierrors.IsNotFound(err):
		return nil, configErrorf("configmap %q not found", name)
	case err != nil:
		return nil, err
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, val := range cm.Data {
		data[k] = []byte(val)
	}
	for k, val := range cm.BinaryData {
		data[k] = val
	}
	return data, nil
}

// secretData returns a Secret's keys (an optional one missing has none).
func (v volumeSetup) secretData(ctx context.Context, namespace, name string, optional bool) (map[string][]byte, error) {
	sec, err := v.objects.Secret(ctx, namespace, name)
	switch {
	case apierrors.IsNotFound(err) && optional:
		return map[string][]byte{}, nil
	case apierrors.IsNotFound(err):
		return nil, configErrorf("secret %q not found", name)
	case err != nil:
		return nil, err
	}
	return sec.Data, nil
}

// downwardAPIFiles are the files of a downwardAPI volume or projection.
func downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32, env envInputs) ([]volumeFile, error) {
	var files []volumeFile
	for _, item := range items {
		var value string
		var err error
		switch {
		case item.FieldRef != nil:
			switch item.FieldRef.FieldPath {
			case "metadata.labels":
				value = formatMap(pod.Labels)
			case "metadata.annotations":
				value = formatMap(pod.Annotations)
			default:
				value, err = fieldRefValue(pod, item.FieldRef.FieldPath, env)
			}
		case item.ResourceFieldRef != nil:
			value, err = resourceFieldRefValue(pod, nil, item.ResourceFieldRef, env.allocatable)
		}
		if err != nil {
			return nil, err
		}
		files = append(files, volumeFile{path: item.Path, data: []byte(value), mode: modeOr(item.Mode, defaultMode)})
	}
	return files, nil
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

type volumeFile struct {
	path string
	data []byte
	mode os.FileMode
}

func modeOr(m, def *int32) os.FileMode {
	switch {
	case m != nil:
		return os.FileMode(*m)
	case def != nil:
		return os.FileMode(*def)
	}
	return 0o644
}

// projectKeys selects the files of a ConfigMap or Secret volume.
func projectKeys(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool, what string) ([]volumeFile, error) {
	var files []volumeFile
	if len(items) == 0 {
		for k, val := range data {
			files = append(files, volumeFile{path: k, data: val, mode: modeOr(nil, defaultMode)})
		}
		return files, nil
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, configErrorf("couldn't find key %s in %s", it.Key, what)
		}
		files = append(files, volumeFile{path: it.Path, data: val, mode: modeOr(it.Mode, defaultMode)})
	}
	return files, nil
}

// writeFiles makes a volume directory hold files, updating it atomically
// (see writeAtomic); memory-backed ones are on a tmpfs. With an fsGroup
// the files are the group's and readable by it (as the kubelet gives a
// read-only volume to the group).
func (v volumeSetup) writeFiles(pod *corev1.Pod, rel string, files []volumeFile, memory bool) (string, error) {
	dir := filepath.Join(v.dir, "volumes", rel)
	if memory && v.mounter != nil && !v.refresh {
		if err := v.ensureTmpfs(dir, 0); err != nil {
			return "", err
		}
	}
	fsGroup, _ := podFSGroup(pod)
	if fsGroup != nil {
		for i := range files {
			files[i].mode |= 0o440
		}
	}
	changed, err := writeAtomic(dir, files)
	if err != nil {
		return "", err
	}
	if changed && fsGroup != nil {
		if _, err := volumes.SetOwnership(dir, fsGroup, nil, true); err != nil {
			return "", err
		}
	}
	if changed && v.refresh {
		slog.Debug("updated a volume", "dir", dir)
	}
	return dir, nil
}

// ensureTmpfs mounts a tmpfs on a volume directory being set up. One that
// has content already is left as it is: set up before, on a tmpfs (or on
// disk by an older agent, and then bind-mounted into running containers).
func (v volumeSetup) ensureTmpfs(dir string, size int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(entries) > 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return v.mounter.mountTmpfs(dir, size)
}

func hostPathVolume(h *corev1.HostPathVolumeSource) (string, error) {
	p := h.Path
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	fi, err := os.Stat(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	fail := func(what string) (string, error) {
		return "", configErrorf("hostPath type check failed: %s is not a %s", p, what)
	}
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			return p, os.MkdirAll(p, 0o755)
		}
		if !fi.IsDir() {
			return fail("directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return p, f.Close()
		}
		if fi.IsDir() {
			return fail("file")
		}
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return fail("directory")
		}
	case corev1.HostPathFile:
		if !exists || !fi.Mode().IsRegular() {
			return fail("file")
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode()&fs.ModeSocket == 0 {
			return fail("socket")
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode()&fs.ModeCharDevice == 0 {
			return fail("character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
			return fail("block device")
		}
	}
	return p, nil
}

// mountInputs is what a container's mounts are made from, besides the
// pod and the container.
type mountInputs struct {
	// volumes is the host path of each of the pod's volumes (prepare).
	volumes map[string]string
	// env is the container's environment, for subPathExpr.
	env []envVar
	// podDir is the pod's directory; subPath mounts are bind-mounted
	// under its volume-subpaths directory unless noBind (tests without
	// root), which gives the runtime the resolved path instead.
	podDir string
	noBind bool
	// termMsgFile is the container's termination-message file ("" none).
	termMsgFile string
}

// containerMounts are a container's mounts: its volume mounts and its
// termination-message file. A volume that must be mounted read-only (see
// mustMountReadOnly) is, whatever the volumeMount says. A subPath (or a
// subPathExpr, expanded from the container's environment) is resolved
// inside its volume without following anything out of it, made if
// missing, and bind-mounted under the pod's volume-subpaths directory as
// the kubelet does, so that the runtime mounts exactly what was resolved.
func containerMounts(pod *corev1.Pod, c *corev1.Container, in mountInputs) ([]*runtimeapi.Mount, error) {
	readOnly := map[string]bool{}
	for i := range pod.Spec.Volumes {
		if mustMountReadOnly(&pod.Spec.Volumes[i]) {
			readOnly[pod.Spec.Volumes[i].Name] = true
		}
	}
	if len(c.VolumeDevices) > 0 {
		return nil, configErrorf("container %q: volumeDevices (raw block volumes) are not supported by Havre; mount a claim of volumeMode Filesystem with volumeMounts", c.Name)
	}
	var mounts []*runtimeapi.Mount
	for i, vm := range c.VolumeMounts {
		host, ok := in.volumes[vm.Name]
		if !ok {
			return nil, configErrorf("volume mount %q: no volume of that name", vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if sub, err = expandSubPathExpr(vm.SubPathExpr, in.env); err != nil {
				return nil, err
			}
		}
		if sub != "" {
			if err := volumes.ValidateSubPath(sub); err != nil {
				return nil, configErrorf("%v", err)
			}
			target := filepath.Join(in.podDir, "volume-subpaths", vm.Name, c.Name, strconv.Itoa(i))
			p, err := subPathHost(host, sub, target, in.noBind)
			if err != nil {
				return nil, configErrorf("failed to prepare subPath for volumeMount %q of container %q: %v", vm.Name, c.Name, err)
			}
			host = p
		}
		m := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly || readOnly[vm.Name]}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case corev1.MountPropagationBidirectional:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		mounts = append(mounts, m)
	}
	if in.termMsgFile != "" && c.TerminationMessagePath != "" {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: in.termMsgFile})
	}
	return mounts, nil
}

// mustMountReadOnly reports whether every mount of a volume is read-only,
// as the kubelet's volume plugins say: configMap, secret, downwardAPI and
// projected volumes (their content is the API's), and claims whose volume
// source says readOnly.
func mustMountReadOnly(vol *corev1.Volume) bool {
	switch {
	case vol.ConfigMap != nil, vol.Secret != nil, vol.DownwardAPI != nil, vol.Projected != nil:
		return true
	case vol.PersistentVolumeClaim != nil:
		return vol.PersistentVolumeClaim.ReadOnly
	}
	return false
}

// expandSubPathExpr expands a subPathExpr from the container's
// environment; every variable it names must have a value.
func expandSubPathExpr(expr string, env []envVar) (string, error) {
	m := make(map[string]string, len(env))
	for _, v := range env {
		m[v.Name] = v.Value
	}
	var missing []string
	out := expand(expr, func(name string) (string, bool) {
		v, ok := m[name]
		if !ok || v == "" {
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
		return v, true
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", configErrorf("failed to expand subPathExpr %q: missing value for %s", expr, strings.Join(missing, ", "))
	}
	return out, nil
}

// subPathHost resolves a subPath of the volume at root safely and returns
// what the runtime is to mount: target, bind-mounted on what it resolved
// to, or (noBind) the resolved path itself.
func subPathHost(root, sub, target string, noBind bool) (string, error) {
	if !noBind {
		if err := volumes.BindSubPath(root, sub, target); err != nil {
			return "", err
		}
		return target, nil
	}
	f, err := volumes.OpenSubPath(root, sub)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
}

// maxTerminationMessage is how much of a termination message is read.
const maxTerminationMessage = 4096

// readTerminationMessage reads a container's termination-message file.
func readTerminationMessage(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, maxTerminationMessage)
	n, _ := f.Read(buf)
	return string(buf[:n])
}

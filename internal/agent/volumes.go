package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
		if src.EmptyDir.Medium == corev1.StorageMediumMemory && v.mounter != nil {
			if err := v.ensureTmpfs(p, memoryVolumeSize(pod, src.EmptyDir.SizeLimit, v.env.allocatable)); err != nil {
				return "", err
			}
		}
		if err := os.MkdirAll(p, 0o777); err != nil {
			return "", err
		}
		return p, os.Chmod(p, 0o777)
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
		return v.writeFiles(filepath.Join(volConfigMap, vol.Name), files, false)
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
		return v.writeFiles(filepath.Join(volSecret, vol.Name), files, true)
	case src.DownwardAPI != nil:
		files, err := downwardAPIFiles(pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode, v.env)
		if err != nil {
			return "", err
		}
		return v.writeFiles(filepath.Join(volDownwardAPI, vol.Name), files, false)
	case src.Projected != nil:
		files, err := v.projectedFiles(ctx, pod, src.Projected)
		if err != nil {
			return "", err
		}
		return v.writeFiles(filepath.Join(volProjected, vol.Name), files, true)
	}
	return "", configErrorf("volume %q: this node does not support its type yet (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected)", vol.Name)
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
// (see writeAtomic); memory-backed ones are on a tmpfs.
func (v volumeSetup) writeFiles(rel string, files []volumeFile, memory bool) (string, error) {
	dir := filepath.Join(v.dir, "volumes", rel)
	if memory && v.mounter != nil && !v.refresh {
		if err := v.ensureTmpfs(dir, 0); err != nil {
			return "", err
		}
	}
	changed, err := writeAtomic(dir, files)
	if err != nil {
		return "", err
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

// containerMounts are a container's mounts: its volume mounts and its
// termination-message file.
func containerMounts(c *corev1.Container, volumes map[string]string, termMsgFile string) ([]*runtimeapi.Mount, error) {
	var mounts []*runtimeapi.Mount
	for _, vm := range c.VolumeMounts {
		host, ok := volumes[vm.Name]
		if !ok {
			return nil, configErrorf("volume mount %q: no volume of that name", vm.Name)
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, filepath.Clean("/"+vm.SubPath))
			if _, err := os.Stat(host); errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll(host, 0o755); err != nil {
					return nil, err
				}
			}
		}
		m := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly}
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
	if termMsgFile != "" && c.TerminationMessagePath != "" {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: termMsgFile})
	}
	return mounts, nil
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

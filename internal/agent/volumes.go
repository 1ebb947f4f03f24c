package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
		if err := os.MkdirAll(p, 0o777); err != nil {
			return "", err
		}
		return p, os.Chmod(p, 0o777)
	case src.HostPath != nil:
		return hostPathVolume(src.HostPath)
	case src.ConfigMap != nil:
		s := src.ConfigMap
		cm, err := v.objects.ConfigMap(ctx, pod.Namespace, s.Name)
		if apierrors.IsNotFound(err) && deref(s.Optional) {
			cm, err = nil, nil
		} else if apierrors.IsNotFound(err) {
			return "", configErrorf("configmap %q not found", s.Name)
		}
		if err != nil {
			return "", err
		}
		data := map[string][]byte{}
		if cm != nil {
			for k, val := range cm.Data {
				data[k] = []byte(val)
			}
			for k, val := range cm.BinaryData {
				data[k] = val
			}
		}
		files, err := projectKeys(data, s.Items, s.DefaultMode, deref(s.Optional), "configmap "+s.Name)
		if err != nil {
			return "", err
		}
		return v.writeFiles(filepath.Join(volConfigMap, vol.Name), files)
	case src.Secret != nil:
		s := src.Secret
		sec, err := v.objects.Secret(ctx, pod.Namespace, s.SecretName)
		if apierrors.IsNotFound(err) && deref(s.Optional) {
			sec, err = nil, nil
		} else if apierrors.IsNotFound(err) {
			return "", configErrorf("secret %q not found", s.SecretName)
		}
		if err != nil {
			return "", err
		}
		data := map[string][]byte{}
		if sec != nil {
			data = sec.Data
		}
		files, err := projectKeys(data, s.Items, s.DefaultMode, deref(s.Optional), "secret "+s.SecretName)
		if err != nil {
			return "", err
		}
		return v.writeFiles(filepath.Join(volSecret, vol.Name), files)
	case src.DownwardAPI != nil:
		var files []volumeFile
		for _, item := range src.DownwardAPI.Items {
			var value string
			var err error
			switch {
			case item.FieldRef != nil:
				value, err = fieldRefValue(pod, item.FieldRef.FieldPath, v.env)
				if item.FieldRef.FieldPath == "metadata.labels" {
					value, err = formatMap(pod.Labels), nil
				} else if item.FieldRef.FieldPath == "metadata.annotations" {
					value, err = formatMap(pod.Annotations), nil
				}
			case item.ResourceFieldRef != nil:
				value, err = resourceFieldRefValue(pod, nil, item.ResourceFieldRef, v.env.allocatable)
			}
			if err != nil {
				return "", err
			}
			files = append(files, volumeFile{path: item.Path, data: []byte(value), mode: modeOr(item.Mode, src.DownwardAPI.DefaultMode)})
		}
		return v.writeFiles(filepath.Join(volDownwardAPI, vol.Name), files)
	}
	return "", configErrorf("volume %q: this node does not support its type yet (supported: emptyDir, hostPath, configMap, secret, downwardAPI)", vol.Name)
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

// writeFiles replaces the content of a volume directory with files.
func (v volumeSetup) writeFiles(rel string, files []volumeFile) (string, error) {
	dir := filepath.Join(v.dir, "volumes", rel)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	for _, f := range files {
		clean := filepath.Clean("/" + f.path)
		p := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return "", err
		}
		if err := os.Chmod(p, f.mode&fs.ModePerm); err != nil {
			return "", err
		}
	}
	// Containers bind-mount the directory itself: keep it and replace its
	// content, so that running containers see the new files.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	old, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return "", err
		}
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return "", err
		}
	}
	return dir, os.RemoveAll(tmp)
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

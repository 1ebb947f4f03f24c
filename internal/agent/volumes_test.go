package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestVolumes(t *testing.T) {
	dir := t.TempDir()
	hostDir := filepath.Join(dir, "host")
	objects := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"ns/cm": {Data: map[string]string{"a": "1", "b": "2"}}},
		secrets: map[string]*corev1.Secret{"ns/sec": {Data: map[string][]byte{"pw": []byte("x")}}},
	}
	mode := int32(0o400)
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirOrCreate}}},
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "b", Path: "sub/b.txt"}}}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: &mode}}},
			{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			}}}},
		}},
	}
	v := volumeSetup{dir: filepath.Join(dir, "pod"), objects: objects}
	paths, err := v.prepare(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if fi, err := os.Stat(paths["scratch"]); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir %v %v", fi, err)
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() || paths["host"] != hostDir {
		t.Errorf("hostPath DirectoryOrCreate: %v", err)
	}
	if got := read(filepath.Join(paths["cm"], "sub/b.txt")); got != "2" {
		t.Errorf("configMap item %q", got)
	}
	if _, err := os.Stat(filepath.Join(paths["cm"], "a")); !os.IsNotExist(err) {
		t.Error("a configMap key not in items was written")
	}
	if fi, err := os.Stat(filepath.Join(paths["sec"], "pw")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("secret file %v %v", fi, err)
	}
	if read(filepath.Join(paths["info"], "name")) != "p" || read(filepath.Join(paths["info"], "labels")) != `app="web"` {
		t.Error("downwardAPI files")
	}

	// Updates replace the files in place.
	objects.cms["ns/cm"].Data["b"] = "3"
	if _, err := v.prepare(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if got := read(filepath.Join(paths["cm"], "sub/b.txt")); got != "3" {
		t.Errorf("updated configMap item %q", got)
	}

	// Mounts, with subPath and the termination message file.
	c := &corev1.Container{Name: "c", TerminationMessagePath: "/dev/termination-log", VolumeMounts: []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/data", SubPath: "x/y"}, {Name: "cm", MountPath: "/etc/cm", ReadOnly: true},
	}}
	mounts, err := containerMounts(pod, c, mountInputs{volumes: paths, noBind: true, termMsgFile: "/term"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 3 || mounts[0].HostPath != filepath.Join(paths["scratch"], "x/y") || !mounts[1].Readonly || mounts[2].HostPath != "/term" {
		t.Errorf("mounts %v", mounts)
	}
	if _, err := os.Stat(filepath.Join(paths["scratch"], "x/y")); err != nil {
		t.Errorf("subPath not created: %v", err)
	}
	if _, err := containerMounts(pod, &corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "nope"}}}, mountInputs{volumes: paths, noBind: true}); err == nil {
		t.Error("a mount of a missing volume was accepted")
	}
	if _, err := containerMounts(pod, &corev1.Container{VolumeDevices: []corev1.VolumeDevice{{Name: "scratch", DevicePath: "/dev/xvda"}}}, mountInputs{volumes: paths, noBind: true}); err == nil {
		t.Error("volumeDevices were accepted")
	}

	// Missing objects and unsupported types are configuration errors.
	for _, vol := range []corev1.Volume{
		{Name: "x", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		{Name: "x", VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{}}},
		{Name: "x", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(dir, "none"), Type: new(corev1.HostPathFile)}}},
	} {
		_, err := v.prepare(context.Background(), &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: corev1.PodSpec{Volumes: []corev1.Volume{vol}}})
		if _, ok := err.(*configError); !ok {
			t.Errorf("volume %+v: %v, want a configuration error", vol.VolumeSource, err)
		}
	}
	optional := true
	if _, err := v.prepare(context.Background(), &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "x", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: &optional}}},
	}}}); err != nil {
		t.Errorf("optional missing secret: %v", err)
	}
}

func TestTerminationMessage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(p, []byte(strings.Repeat("x", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readTerminationMessage(p); len(got) != maxTerminationMessage {
		t.Errorf("message of %d bytes", len(got))
	}
	if readTerminationMessage("") != "" || readTerminationMessage(p+"nope") != "" {
		t.Error("missing files give a message")
	}
}

func TestContainerMounts(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(filepath.Join(vol, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(vol, "escape")); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
		{Name: "ro", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c", ReadOnly: true}}},
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: vol}}},
	}}}
	paths := map[string]string{"data": vol, "ro": vol, "cm": vol, "host": vol}
	env := []envVar{{Name: "POD_NAME", Value: "web-0"}, {Name: "EMPTY", Value: ""}, {Name: "UP", Value: ".."}}
	for _, tc := range []struct {
		name     string
		vm       corev1.VolumeMount
		host     string // relative to vol
		readOnly bool
		err      string
	}{
		{name: "whole volume", vm: corev1.VolumeMount{Name: "data"}, host: "."},
		{name: "subPath", vm: corev1.VolumeMount{Name: "data", SubPath: "in"}, host: "in"},
		{name: "subPath made", vm: corev1.VolumeMount{Name: "data", SubPath: "new/sub"}, host: "new/sub"},
		{name: "subPathExpr", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "logs/$(POD_NAME)"}, host: "logs/web-0"},
		{name: "subPathExpr escaped dollar", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "$$(POD_NAME)"}, host: "$(POD_NAME)"},
		{name: "subPathExpr of a missing variable", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "$(NOPE)/$(EMPTY)"}, err: "missing value for EMPTY, NOPE"},
		{name: "subPathExpr expanding to ..", vm: corev1.VolumeMount{Name: "data", SubPathExpr: "$(UP)/x"}, err: "must not contain '..'"},
		{name: "absolute subPath", vm: corev1.VolumeMount{Name: "data", SubPath: "/etc"}, err: "must not be an absolute path"},
		{name: "subPath through a link out", vm: corev1.VolumeMount{Name: "data", SubPath: "escape/passwd"}, err: "not within volume path"},
		{name: "hostPath subPath through a link out", vm: corev1.VolumeMount{Name: "host", SubPath: "escape"}, err: "not within volume path"},
		{name: "readOnly mount", vm: corev1.VolumeMount{Name: "data", ReadOnly: true}, host: ".", readOnly: true},
		{name: "readOnly claim", vm: corev1.VolumeMount{Name: "ro"}, host: ".", readOnly: true},
		{name: "configMap is always read-only", vm: corev1.VolumeMount{Name: "cm"}, host: ".", readOnly: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.vm.MountPath = "/mnt"
			c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{tc.vm}}
			mounts, err := containerMounts(pod, c, mountInputs{volumes: paths, env: env, noBind: true})
			if tc.err != "" {
				if _, ok := err.(*configError); !ok || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a configuration error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(mounts) != 1 || mounts[0].HostPath != filepath.Join(vol, tc.host) || mounts[0].Readonly != tc.readOnly {
				t.Errorf("mounts %v, want %s readOnly=%v", mounts, filepath.Join(vol, tc.host), tc.readOnly)
			}
		})
	}
}

func TestEmptyDirFSGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group needs root")
	}
	dir := t.TempDir()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{FSGroup: new(int64(2345))},
			Volumes:         []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	v := volumeSetup{dir: dir}
	paths, err := v.prepare(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(paths["scratch"], &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != 2345 || st.Mode&0o7777 != 0o2777 {
		t.Errorf("emptyDir group %d mode %o, want 2345 and 2777", st.Gid, st.Mode&0o7777)
	}
	// A later container start leaves it as it is.
	if err := syscall.Chmod(paths["scratch"], 0o2770); err != nil {
		t.Fatal(err)
	}
	if _, err := v.prepare(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(paths["scratch"], &st); err != nil || st.Mode&0o7777 != 0o2770 {
		t.Errorf("emptyDir set up again: mode %o, %v", st.Mode&0o7777, err)
	}
}

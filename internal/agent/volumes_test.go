package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
	mounts, err := containerMounts(c, paths, "/term")
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 3 || mounts[0].HostPath != filepath.Join(paths["scratch"], "x/y") || !mounts[1].Readonly || mounts[2].HostPath != "/term" {
		t.Errorf("mounts %v", mounts)
	}
	if _, err := os.Stat(filepath.Join(paths["scratch"], "x/y")); err != nil {
		t.Errorf("subPath not created: %v", err)
	}
	if _, err := containerMounts(&corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "nope"}}}, paths, ""); err == nil {
		t.Error("a mount of a missing volume was accepted")
	}

	// Missing objects and unsupported types are configuration errors.
	for _, vol := range []corev1.Volume{
		{Name: "x", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		{Name: "x", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
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

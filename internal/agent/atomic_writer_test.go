package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// listDir lists a directory's entries, links shown as name->target.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil {
			if strings.HasPrefix(target, "..2") {
				target = "<version>"
			}
			name += "->" + target
		} else if strings.HasPrefix(name, "..2") {
			name = "<version>/"
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	read := func(p string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	files := []volumeFile{{path: "a", data: []byte("1"), mode: 0o644}, {path: "sub/b", data: []byte("2"), mode: 0o400}}
	changed, err := writeAtomic(dir, files)
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	want := []string{"..data-><version>", "<version>/", "a->..data/a", "sub->..data/sub"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("layout %v, want %v", got, want)
	}
	if read("a") != "1" || read("sub/b") != "2" {
		t.Error("content")
	}
	if fi, err := os.Stat(filepath.Join(dir, "sub/b")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("mode %v %v", fi, err)
	}
	v1, _ := os.Readlink(filepath.Join(dir, dataLink))

	// The same files again change nothing.
	if changed, err := writeAtomic(dir, files); err != nil || changed {
		t.Fatalf("rewrite: %v %v", changed, err)
	}
	if v, _ := os.Readlink(filepath.Join(dir, dataLink)); v != v1 {
		t.Error("an unchanged payload made a new version")
	}
	// A mode change is a change.
	files[0].mode = 0o600
	if changed, err := writeAtomic(dir, files); err != nil || !changed {
		t.Fatalf("mode change: %v %v", changed, err)
	}

	// An update swaps the version: new content, a key gone, the old
	// version removed.
	if changed, err := writeAtomic(dir, []volumeFile{{path: "a", data: []byte("3"), mode: 0o644}, {path: "c", data: []byte("4"), mode: 0o644}}); err != nil || !changed {
		t.Fatalf("update: %v %v", changed, err)
	}
	want = []string{"..data-><version>", "<version>/", "a->..data/a", "c->..data/c"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("layout after the update %v, want %v", got, want)
	}
	if read("a") != "3" || read("c") != "4" {
		t.Error("updated content")
	}
	if v, _ := os.Readlink(filepath.Join(dir, dataLink)); v == v1 {
		t.Error("the update did not make a new version")
	}

	// Invalid paths.
	for _, p := range []string{"/abs", "../up", "a/../../b", "..hidden", ""} {
		if _, err := writeAtomic(dir, []volumeFile{{path: p, mode: 0o644}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}

func TestWriteAtomicReplacesTheOldLayout(t *testing.T) {
	// A volume written by an older agent: plain files.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stale"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := writeAtomic(dir, []volumeFile{{path: "a", data: []byte("new"), mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	if got, want := listDir(t, dir), []string{"..data-><version>", "<version>/", "a->..data/a"}; !slices.Equal(got, want) {
		t.Errorf("layout %v, want %v", got, want)
	}
}

// fakeMounter records tmpfs mounts instead of making them.
type fakeMounter struct{ mounts map[string]int64 }

func (f *fakeMounter) mountTmpfs(dir string, size int64) error {
	f.mounts[dir] = size
	return nil
}

func TestProjectedAndMemoryVolumes(t *testing.T) {
	dir := t.TempDir()
	objects := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"ns/cm": {Data: map[string]string{"a": "1"}}},
		secrets: map[string]*corev1.Secret{"ns/sec": {Data: map[string][]byte{"pw": []byte("x")}}},
	}
	mode := int32(0o440)
	optional := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Limits: rl("memory", "64Mi")}}},
			Volumes: []corev1.Volume{
				{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: &mode, Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "a", Path: "ca.crt"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: &optional}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: new(resource.MustParse("16Mi"))}}},
				{Name: "big", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
			},
		},
	}
	m := &fakeMounter{mounts: map[string]int64{}}
	v := volumeSetup{dir: dir, objects: objects, mounter: m, env: envInputs{allocatable: rl("memory", "1Gi")}}
	paths, err := v.prepare(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	got := listDir(t, paths["all"])
	if want := []string{"..data-><version>", "<version>/", "ca.crt->..data/ca.crt", "namespace->..data/namespace", "pw->..data/pw"}; !slices.Equal(got, want) {
		t.Errorf("projected volume %v, want %v (no token file)", got, want)
	}
	if fi, err := os.Stat(filepath.Join(paths["all"], "pw")); err != nil || fi.Mode().Perm() != 0o440 {
		t.Errorf("projected file mode %v %v", fi, err)
	}
	if m.mounts[paths["all"]] != 0 || m.mounts[paths["cache"]] != 16<<20 || m.mounts[paths["big"]] != 64<<20 {
		t.Errorf("tmpfs mounts %v", m.mounts)
	}
	if _, ok := m.mounts[paths["all"]]; !ok {
		t.Error("the projected volume is not on a tmpfs")
	}

	// A missing non-optional source is a configuration error.
	pod.Spec.Volumes = []corev1.Volume{{Name: "x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}},
	}}}}}
	if _, err := v.prepare(context.Background(), pod); err == nil || !strings.Contains(err.Error(), `configmap "nope" not found`) {
		t.Errorf("missing projected configmap: %v", err)
	}
}

func TestMemoryVolumeSize(t *testing.T) {
	alloc := rl("memory", "1Gi")
	limited := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Resources: corev1.ResourceRequirements{Limits: rl("memory", "100Mi")}},
		{Resources: corev1.ResourceRequirements{Limits: rl("memory", "28Mi")}},
	}}}
	unlimited := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Resources: corev1.ResourceRequirements{Limits: rl("memory", "100Mi")}}, {},
	}}}
	small, huge := resource.MustParse("8Mi"), resource.MustParse("8Gi")
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		limit *resource.Quantity
		want  int64
	}{
		{"pod limit", limited, nil, 128 << 20},
		{"size limit below the pod's", limited, &small, 8 << 20},
		{"size limit above the pod's", limited, &huge, 128 << 20},
		{"no pod limit: allocatable", unlimited, nil, 1 << 30},
		{"no pod limit, a size limit", unlimited, &small, 8 << 20},
	} {
		if got := memoryVolumeSize(tc.pod, tc.limit, alloc); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

package apiserver

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAutomountToken(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		pod, sa *bool
		want    bool
	}{
		{"default", nil, nil, true},
		{"account opts out", nil, &no, false},
		{"account opts in", nil, &yes, true},
		{"pod wins over account", &yes, &no, true},
		{"pod opts out", &no, &yes, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{AutomountServiceAccountToken: tt.pod}}
			sa := &corev1.ServiceAccount{AutomountServiceAccountToken: tt.sa}
			if got := automountToken(sa, pod); got != tt.want {
				t.Errorf("automountToken = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMountServiceAccountToken(t *testing.T) {
	mountedAt := func(path string) []corev1.VolumeMount {
		return []corev1.VolumeMount{{Name: "mine", MountPath: path}}
	}
	tests := []struct {
		name string
		pod  corev1.PodSpec
		// wantMounts is, per init container then container, whether it
		// gets the token mount.
		wantMounts []bool
		wantVolume bool
	}{
		{
			name:       "every container and init container",
			pod:        corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
			wantMounts: []bool{true, true, true}, wantVolume: true,
		},
		{
			name:       "a container with its own mount there is left alone",
			pod:        corev1.PodSpec{Containers: []corev1.Container{{Name: "a", VolumeMounts: mountedAt(serviceAccountMountPath)}, {Name: "b"}}},
			wantMounts: []bool{false, true}, wantVolume: true,
		},
		{
			name:       "no container needs it",
			pod:        corev1.PodSpec{Containers: []corev1.Container{{Name: "a", VolumeMounts: mountedAt(serviceAccountMountPath)}}},
			wantMounts: []bool{false}, wantVolume: false,
		},
		{
			name:       "other mounts do not matter",
			pod:        corev1.PodSpec{Containers: []corev1.Container{{Name: "a", VolumeMounts: mountedAt("/data")}}},
			wantMounts: []bool{true}, wantVolume: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: tt.pod}
			mountServiceAccountToken(pod)
			var vol *corev1.Volume
			for i, v := range pod.Spec.Volumes {
				if strings.HasPrefix(v.Name, serviceAccountVolumePrefix) {
					vol = &pod.Spec.Volumes[i]
				}
			}
			if (vol != nil) != tt.wantVolume {
				t.Fatalf("volumes %+v, want the token volume: %v", pod.Spec.Volumes, tt.wantVolume)
			}
			if vol != nil {
				checkTokenVolume(t, vol)
			}
			all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
			for i, c := range all {
				got := false
				for _, m := range c.VolumeMounts {
					if m.MountPath == serviceAccountMountPath && strings.HasPrefix(m.Name, serviceAccountVolumePrefix) {
						got = true
						if !m.ReadOnly || vol == nil || m.Name != vol.Name {
							t.Errorf("container %s: mount %+v", c.Name, m)
						}
					}
				}
				if got != tt.wantMounts[i] {
					t.Errorf("container %s: token mount %v, want %v", c.Name, got, tt.wantMounts[i])
				}
			}
		})
	}
}

// TestMountServiceAccountTokenKeepsVolume: a pod that already has a
// kube-api-access- volume gets mounts of that one, and no second volume.
func TestMountServiceAccountTokenKeepsVolume(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Volumes:    []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: serviceAccountTokenVolume()}}},
		Containers: []corev1.Container{{Name: "a"}},
	}}
	mountServiceAccountToken(pod)
	if len(pod.Spec.Volumes) != 1 {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].Name != "kube-api-access-abcde" {
		t.Errorf("mounts %+v", m)
	}
}

func checkTokenVolume(t *testing.T, vol *corev1.Volume) {
	t.Helper()
	if len(vol.Name) != len(serviceAccountVolumePrefix)+5 {
		t.Errorf("volume name %q, want %s and 5 characters", vol.Name, serviceAccountVolumePrefix)
	}
	p := vol.Projected
	if p == nil || p.DefaultMode == nil || *p.DefaultMode != 0o644 || len(p.Sources) != 3 {
		t.Fatalf("projected %+v", p)
	}
	if tok := p.Sources[0].ServiceAccountToken; tok == nil || tok.Path != "token" || tok.ExpirationSeconds == nil || *tok.ExpirationSeconds != 3607 || tok.Audience != "" {
		t.Errorf("token source %+v", tok)
	}
	if cm := p.Sources[1].ConfigMap; cm == nil || cm.Name != "kube-root-ca.crt" || len(cm.Items) != 1 ||
		cm.Items[0] != (corev1.KeyToPath{Key: "ca.crt", Path: "ca.crt"}) {
		t.Errorf("configMap source %+v", cm)
	}
	if d := p.Sources[2].DownwardAPI; d == nil || len(d.Items) != 1 || d.Items[0].Path != "namespace" ||
		d.Items[0].FieldRef == nil || *d.Items[0].FieldRef != (corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}) {
		t.Errorf("downwardAPI source %+v", d)
	}
}

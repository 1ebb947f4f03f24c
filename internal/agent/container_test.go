package agent

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestVerifyNonRoot(t *testing.T) {
	uid := func(v int64) *runtimeapi.Image { return &runtimeapi.Image{Uid: &runtimeapi.Int64Value{Value: v}} }
	for _, tc := range []struct {
		name    string
		sec     effectiveSecurity
		image   *runtimeapi.Image
		wantErr string
	}{
		{name: "not asked", sec: effectiveSecurity{}, image: uid(0)},
		{name: "runAsUser 0", sec: effectiveSecurity{runAsNonRoot: true, runAsUser: new(int64(0))}, wantErr: "runAsUser breaks non-root policy"},
		{name: "runAsUser 1000", sec: effectiveSecurity{runAsNonRoot: true, runAsUser: new(int64(1000))}, image: uid(0)},
		{name: "image root", sec: effectiveSecurity{runAsNonRoot: true}, image: uid(0), wantErr: "image will run as root"},
		{name: "image user 1000", sec: effectiveSecurity{runAsNonRoot: true}, image: uid(1000)},
		{name: "image named user", sec: effectiveSecurity{runAsNonRoot: true}, image: &runtimeapi.Image{Username: "app"}, wantErr: "non-numeric user (app)"},
		{name: "image without user", sec: effectiveSecurity{runAsNonRoot: true}, image: &runtimeapi.Image{}, wantErr: "image will run as root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(corev1.RestartPolicyAlways, nil, "c")
			err := verifyNonRoot(pod, &pod.Spec.Containers[0], tc.sec, tc.image)
			if (err != nil) != (tc.wantErr != "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("verifyNonRoot: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestContainerConfig(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, nil, "web")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: new(int64(1000)), RunAsGroup: new(int64(1000))}
	c := &pod.Spec.Containers[0]
	c.Command = []string{"/bin/app", "--name=$(NAME)"}
	c.Args = []string{"$$(NAME)", "$(MISSING)"}
	c.WorkingDir = "/work"
	c.TerminationMessagePath = "/dev/termination-log"
	c.SecurityContext = &corev1.SecurityContext{
		RunAsUser:                new(int64(2000)),
		ReadOnlyRootFilesystem:   new(true),
		AllowPrivilegeEscalation: new(false),
		Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	mounts := []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: "/pods/u1/containers/web/3"}}
	cfg, err := containerConfig(pod, c, containerInputs{
		attempt: 3, env: []envVar{{"NAME", "web"}}, image: "sha256:abc", mounts: mounts, memoryCapacity: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metadata.Name != "web" || cfg.Metadata.Attempt != 3 || cfg.LogPath != "web/3.log" || cfg.Image.Image != "sha256:abc" || cfg.Image.UserSpecifiedImage != "img" {
		t.Errorf("config %+v", cfg)
	}
	if strings.Join(cfg.Command, " ") != "/bin/app --name=web" || strings.Join(cfg.Args, " ") != "$(NAME) $(MISSING)" || cfg.WorkingDir != "/work" {
		t.Errorf("command %v args %v", cfg.Command, cfg.Args)
	}
	if len(cfg.Envs) != 1 || cfg.Envs[0].Key != "NAME" || string(cfg.Envs[0].Value) != "web" {
		t.Errorf("envs %v", cfg.Envs)
	}
	if cfg.Labels[labelContainerName] != "web" || cfg.Annotations[annotationRestartCount] != "3" || cfg.Annotations[annotationTermMsgPath] != "/pods/u1/containers/web/3" {
		t.Errorf("labels %v annotations %v", cfg.Labels, cfg.Annotations)
	}
	sc := cfg.Linux.SecurityContext
	if sc.RunAsUser.Value != 2000 || sc.RunAsGroup.Value != 1000 || !sc.ReadonlyRootfs || !sc.NoNewPrivs || sc.Privileged ||
		strings.Join(sc.Capabilities.AddCapabilities, ",") != "NET_ADMIN" || strings.Join(sc.Capabilities.DropCapabilities, ",") != "ALL" ||
		sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_RuntimeDefault || len(sc.MaskedPaths) == 0 || len(sc.ReadonlyPaths) == 0 {
		t.Errorf("security context %+v", sc)
	}

	// Privileged containers get no masked paths; unset seccomp is unconfined.
	c.SecurityContext = &corev1.SecurityContext{Privileged: new(true)}
	cfg, err = containerConfig(pod, c, containerInputs{image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	if sc := cfg.Linux.SecurityContext; !sc.Privileged || len(sc.MaskedPaths) != 0 || sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Unconfined || sc.NoNewPrivs {
		t.Errorf("privileged security context %+v", sc)
	}
}

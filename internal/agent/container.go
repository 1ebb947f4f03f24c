package agent

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Paths the kubelet masks or makes read-only in unprivileged containers.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// effectiveSecurity merges the pod's security context into a container's,
// the container's fields winning.
type effectiveSecurity struct {
	runAsUser, runAsGroup *int64
	runAsNonRoot          bool
	privileged            bool
	readOnlyRoot          bool
	allowEscalation       *bool
	caps                  *corev1.Capabilities
	procMount             corev1.ProcMountType
	seccomp               *corev1.SeccompProfile
	supplementalGroups    []int64
}

func securityFor(pod *corev1.Pod, c *corev1.Container) effectiveSecurity {
	var e effectiveSecurity
	if p := pod.Spec.SecurityContext; p != nil {
		e.runAsUser, e.runAsGroup = p.RunAsUser, p.RunAsGroup
		e.runAsNonRoot = deref(p.RunAsNonRoot)
		e.seccomp = p.SeccompProfile
		e.supplementalGroups = slices.Clone(p.SupplementalGroups)
		if p.FSGroup != nil {
			e.supplementalGroups = append(e.supplementalGroups, *p.FSGroup)
		}
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			e.runAsUser = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			e.runAsGroup = s.RunAsGroup
		}
		if s.RunAsNonRoot != nil {
			e.runAsNonRoot = *s.RunAsNonRoot
		}
		e.privileged = deref(s.Privileged)
		e.readOnlyRoot = deref(s.ReadOnlyRootFilesystem)
		e.allowEscalation = s.AllowPrivilegeEscalation
		e.caps = s.Capabilities
		if s.ProcMount != nil {
			e.procMount = *s.ProcMount
		}
		if s.SeccompProfile != nil {
			e.seccomp = s.SeccompProfile
		}
	}
	return e
}

// verifyNonRoot enforces runAsNonRoot against the user the container will
// run as: its runAsUser, else the image's user.
func verifyNonRoot(pod *corev1.Pod, c *corev1.Container, sec effectiveSecurity, image *runtimeapi.Image) error {
	if !sec.runAsNonRoot {
		return nil
	}
	if sec.runAsUser != nil {
		if *sec.runAsUser == 0 {
			return configErrorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
		}
		return nil
	}
	if image == nil {
		return configErrorf("container has runAsNonRoot and the image's user is unknown (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
	}
	if image.Uid != nil {
		if image.Uid.Value == 0 {
			return configErrorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
		}
		return nil
	}
	if image.Username != "" {
		return configErrorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", image.Username, pod.Namespace+"/"+pod.Name, c.Name)
	}
	// No user in the image: it runs as root.
	return configErrorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod.Namespace+"/"+pod.Name, c.Name)
}

func seccompFor(p *corev1.SeccompProfile) *runtimeapi.SecurityProfile {
	if p == nil {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case corev1.SeccompProfileTypeLocalhost:
		lp := ""
		if p.LocalhostProfile != nil {
			lp = *p.LocalhostProfile
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: lp}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
}

// linuxSecurity is the CRI security context of a container.
func linuxSecurity(pod *corev1.Pod, sec effectiveSecurity) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{
		Privileged:         sec.privileged,
		NamespaceOptions:   namespaceOptions(pod),
		ReadonlyRootfs:     sec.readOnlyRoot,
		SupplementalGroups: sec.supplementalGroups,
		NoNewPrivs:         sec.allowEscalation != nil && !*sec.allowEscalation,
		Seccomp:            seccompFor(sec.seccomp),
	}
	if sec.runAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *sec.runAsUser}
	}
	if sec.runAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *sec.runAsGroup}
	}
	if sec.caps != nil {
		sc.Capabilities = &runtimeapi.Capability{}
		for _, c := range sec.caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(c))
		}
		for _, c := range sec.caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(c))
		}
	}
	if !sec.privileged {
		if sec.procMount != corev1.UnmaskedProcMount {
			sc.MaskedPaths = slices.Clone(defaultMaskedPaths)
			sc.ReadonlyPaths = slices.Clone(defaultReadonlyPaths)
		} else {
			sc.MaskedPaths = []string{}
			sc.ReadonlyPaths = []string{}
		}
	}
	return sc
}

// containerInputs is what a container's configuration is made from,
// besides the pod and the container.
type containerInputs struct {
	attempt        uint32
	env            []envVar
	image          string // the reference to create the container from
	imageInfo      *runtimeapi.Image
	mounts         []*runtimeapi.Mount
	memoryCapacity int64
	init           bool
}

// containerConfig is the CRI configuration of a container.
func containerConfig(pod *corev1.Pod, c *corev1.Container, in containerInputs) (*runtimeapi.ContainerConfig, error) {
	sec := securityFor(pod, c)
	if err := verifyNonRoot(pod, c, sec, in.imageInfo); err != nil {
		return nil, err
	}
	labels := map[string]string{
		labelPodName:       pod.Name,
		labelPodNamespace:  pod.Namespace,
		labelPodUID:        string(pod.UID),
		labelContainerName: c.Name,
		labelManagedBy:     managedBy,
	}
	annotations := map[string]string{
		annotationRestartCount: strconv.FormatUint(uint64(in.attempt), 10),
		annotationGrace:        strconv.FormatInt(gracePeriod(pod), 10),
		annotationImage:        c.Image,
	}
	if in.init {
		annotations[annotationInit] = "true"
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: in.attempt},
		Image:       &runtimeapi.ImageSpec{Image: in.image, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command, in.env),
		Args:        expandAll(c.Args, in.env),
		WorkingDir:  c.WorkingDir,
		Labels:      labels,
		Annotations: annotations,
		LogPath:     filepath.Join(c.Name, fmt.Sprintf("%d.log", in.attempt)),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Mounts:      in.mounts,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       containerResources(pod, c, in.memoryCapacity),
			SecurityContext: linuxSecurity(pod, sec),
		},
	}
	for _, v := range in.env {
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: v.Name, Value: []byte(v.Value)})
	}
	for _, m := range in.mounts {
		if m.ContainerPath == c.TerminationMessagePath {
			annotations[annotationTermMsgPath] = m.HostPath
		}
	}
	return cfg, nil
}

// shouldRestart reports whether a container that exited with code should be
// started again under the pod's (or, for sidecars, its own) restart policy.
func shouldRestart(pod *corev1.Pod, c *corev1.Container, exitCode int32) bool {
	if isSidecar(c) {
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

// containerKey names a container of a pod in the back-off tables.
func containerKey(pod *corev1.Pod, name string) string {
	return string(pod.UID) + "/" + name
}

// pullKey names an image pull of a container of a pod.
func pullKey(pod *corev1.Pod, c *corev1.Container) string {
	return string(pod.UID) + "/" + c.Name + "/" + strings.ReplaceAll(c.Image, "/", "_")
}

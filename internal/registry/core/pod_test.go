package core

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var ctx = context.Background()

// validPod is a realistic pod as a client sends it, defaulted.
func validPod() *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"},
					Items:                []corev1.KeyToPath{{Key: "nginx.conf", Path: "nginx.conf"}}}}},
				{Name: "cache"},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls"}}},
			},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "busybox:1.36", Command: []string{"sh", "-c", "true"}}},
			Containers: []corev1.Container{{
				Name:  "nginx",
				Image: "nginx:1.27",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "prod"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				},
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-env"}}}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/nginx/conf.d", ReadOnly: true},
					{Name: "cache", MountPath: "/var/cache/nginx"},
					{Name: "tls", MountPath: "/etc/tls", SubPath: "certs"},
				},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					InitialDelaySeconds: 5},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}},
				Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"nginx", "-s", "quit"}}}},
				SecurityContext: &corev1.SecurityContext{RunAsUser: new(int64(101)), AllowPrivilegeEscalation: new(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
			NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}},
		},
	}
	PodStrategy{}.Default(pod)
	return pod
}

// createdPod is validPod after PrepareForCreate, as stored.
// createdPod is validPod as the API server stores it: prepared for
// create, with what admission adds (a service account, a time-limited
// NoExecute toleration, priority).
func createdPod() *corev1.Pod {
	pod := validPod()
	PodStrategy{}.PrepareForCreate(ctx, pod)
	pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount = "default", "default"
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Key: corev1.TaintNodeNotReady,
		Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(DefaultTolerationSeconds)})
	pod.Spec.Priority, pod.Spec.PreemptionPolicy = new(int32(0)), new(corev1.PreemptLowerPriority)
	return pod
}

func TestPodDefaults(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{{Name: "a"}, {Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}},
		Containers: []corev1.Container{
			{Name: "a", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				Resources:      corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}},
			{Name: "b", Image: "registry.local:5000/app:latest"},
			{Name: "c", Image: "registry.local:5000/app:1.0"},
			{Name: "d", Image: "app@sha256:abcd"},
		},
	}}
	PodStrategy{}.Default(pod)
	s := pod.Spec
	if s.RestartPolicy != corev1.RestartPolicyAlways || s.DNSPolicy != corev1.DNSClusterFirst || s.SchedulerName != "default-scheduler" ||
		*s.TerminationGracePeriodSeconds != 30 || s.SecurityContext == nil || !*s.EnableServiceLinks {
		t.Errorf("pod spec defaults not applied: %+v", s)
	}
	c := s.Containers[0]
	if c.TerminationMessagePath != "/dev/termination-log" || c.TerminationMessagePolicy != corev1.TerminationMessageReadFile || c.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("container defaults not applied: %+v", c)
	}
	if got := c.Resources.Requests[corev1.ResourceCPU]; got.String() != "1" {
		t.Errorf("requests not defaulted from limits: %v", c.Resources.Requests)
	}
	p := c.ReadinessProbe
	if p.TimeoutSeconds != 1 || p.PeriodSeconds != 10 || p.SuccessThreshold != 1 || p.FailureThreshold != 3 || p.HTTPGet.Scheme != corev1.URISchemeHTTP || p.HTTPGet.Path != "/" {
		t.Errorf("probe defaults not applied: %+v", p)
	}
	for i, wantPolicy := range []corev1.PullPolicy{corev1.PullAlways, corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullIfNotPresent} {
		if got := s.Containers[i].ImagePullPolicy; got != wantPolicy {
			t.Errorf("image %q: pull policy %s, want %s", s.Containers[i].Image, got, wantPolicy)
		}
	}
	if s.Volumes[0].EmptyDir == nil || *s.Volumes[1].Secret.DefaultMode != 0644 || *s.Volumes[2].HostPath.Type != corev1.HostPathUnset {
		t.Errorf("volume defaults not applied: %+v", s.Volumes)
	}
}

func TestPodPrepareForCreate(t *testing.T) {
	pod := validPod()
	pod.Status.Phase = corev1.PodRunning
	PodStrategy{}.PrepareForCreate(ctx, pod)
	if pod.Status.Phase != corev1.PodPending || pod.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("status = %+v", pod.Status)
	}
	// Admission's fields are the API server's to set.
	if s := pod.Spec; s.ServiceAccountName != "" || s.Priority != nil || s.PreemptionPolicy != nil || len(s.Tolerations) != len(validPod().Spec.Tolerations) {
		t.Errorf("PrepareForCreate did admission's work: %+v", s)
	}
}

func TestQOSClass(t *testing.T) {
	rr := func(req, lim string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{}
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse(req + "Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse(lim + "Mi")}
		}
		return r
	}
	for _, tc := range []struct {
		name string
		res  []corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"nothing", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"equal", []corev1.ResourceRequirements{rr("1", "1"), rr("2", "2")}, corev1.PodQOSGuaranteed},
		{"limits only (requests defaulted)", []corev1.ResourceRequirements{rr("", "1")}, corev1.PodQOSGuaranteed},
		{"requests below limits", []corev1.ResourceRequirements{rr("1", "2")}, corev1.PodQOSBurstable},
		{"one container without", []corev1.ResourceRequirements{rr("1", "1"), {}}, corev1.PodQOSBurstable},
		{"requests only", []corev1.ResourceRequirements{rr("1", "")}, corev1.PodQOSBurstable},
		{"cpu limit only", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}, corev1.PodQOSBurstable},
		{"other resources ignored", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}}}, corev1.PodQOSBestEffort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			for _, r := range tc.res {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c", Image: "i", Resources: r})
			}
			PodStrategy{}.Default(pod)
			if got := QOSClass(pod); got != tc.want {
				t.Errorf("QOSClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPodValidate(t *testing.T) {
	c0 := "spec.containers[0]"
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []want
	}{
		{"valid", func(*corev1.Pod) {}, nil},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []want{{"spec.containers", field.ErrorTypeRequired}}},
		{"no image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []want{{c0 + ".image", field.ErrorTypeRequired}}},
		{"image whitespace", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }, []want{{c0 + ".image", field.ErrorTypeInvalid}}},
		{"bad container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web_1" }, []want{{c0 + ".name", field.ErrorTypeInvalid}}},
		{"no container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, []want{{c0 + ".name", field.ErrorTypeRequired}}},
		{"duplicate container name", func(p *corev1.Pod) { p.Spec.InitContainers[0].Name = "nginx" },
			[]want{{"spec.initContainers[0].name", field.ErrorTypeDuplicate}}},
		{"port zero", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }, []want{{c0 + ".ports[0].containerPort", field.ErrorTypeRequired}}},
		{"port too big", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }, []want{{c0 + ".ports[0].containerPort", field.ErrorTypeInvalid}}},
		{"bad protocol", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].Protocol = "HTTP" }, []want{{c0 + ".ports[0].protocol", field.ErrorTypeNotSupported}}},
		{"duplicate port name", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP})
		}, []want{{c0 + ".ports[1].name", field.ErrorTypeDuplicate}}},
		{"duplicate host port", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}, {ContainerPort: 81, HostPort: 8080, Protocol: "TCP"}}
		}, []want{{c0 + ".ports[1].hostPort", field.ErrorTypeDuplicate}}},
		{"hostNetwork port mismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports[0].HostPort = 8080
		}, []want{{c0 + ".ports[0].hostPort", field.ErrorTypeInvalid}}},
		{"env name", func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Name = "A=B" }, []want{{c0 + ".env[0].name", field.ErrorTypeInvalid}}},
		{"env value and valueFrom", func(p *corev1.Pod) { p.Spec.Containers[0].Env[1].Value = "x" }, []want{{c0 + ".env[1].valueFrom", field.ErrorTypeInvalid}}},
		{"env bad fieldPath", func(p *corev1.Pod) { p.Spec.Containers[0].Env[1].ValueFrom.FieldRef.FieldPath = "spec.containers" },
			[]want{{c0 + ".env[1].valueFrom.fieldRef.fieldPath", field.ErrorTypeNotSupported}}},
		{"env secret key missing", func(p *corev1.Pod) { p.Spec.Containers[0].Env[3].ValueFrom.SecretKeyRef.Key = "" },
			[]want{{c0 + ".env[3].valueFrom.secretKeyRef.key", field.ErrorTypeRequired}}},
		{"envFrom empty", func(p *corev1.Pod) { p.Spec.Containers[0].EnvFrom[0].ConfigMapRef = nil }, []want{{c0 + ".envFrom[0]", field.ErrorTypeInvalid}}},
		{"duplicate volume", func(p *corev1.Pod) { p.Spec.Volumes[1].Name = "config" },
			[]want{{"spec.volumes[1].name", field.ErrorTypeDuplicate}, {c0 + ".volumeMounts[1].name", field.ErrorTypeNotFound}}},
		{"bad volume name", func(p *corev1.Pod) {
			p.Spec.Volumes[1].Name = "Cache"
			p.Spec.Containers[0].VolumeMounts[1].Name = "Cache"
		}, []want{{"spec.volumes[1].name", field.ErrorTypeInvalid}}},
		{"two volume sources", func(p *corev1.Pod) { p.Spec.Volumes[0].EmptyDir = &corev1.EmptyDirVolumeSource{} },
			[]want{{"spec.volumes[0].configMap", field.ErrorTypeForbidden}}},
		{"secret name missing", func(p *corev1.Pod) { p.Spec.Volumes[2].Secret.SecretName = "" }, []want{{"spec.volumes[2].secret.secretName", field.ErrorTypeRequired}}},
		{"bad default mode", func(p *corev1.Pod) { p.Spec.Volumes[2].Secret.DefaultMode = new(int32(01000)) },
			[]want{{"spec.volumes[2].secret.defaultMode", field.ErrorTypeInvalid}}},
		{"item path with ..", func(p *corev1.Pod) { p.Spec.Volumes[0].ConfigMap.Items[0].Path = "../x" },
			[]want{{"spec.volumes[0].configMap.items[0].path", field.ErrorTypeInvalid}, {"spec.volumes[0].configMap.items[0].path", field.ErrorTypeInvalid}}},
		{"mount of missing volume", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "nope" },
			[]want{{c0 + ".volumeMounts[0].name", field.ErrorTypeNotFound}}},
		{"mount path missing", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "" },
			[]want{{c0 + ".volumeMounts[0].mountPath", field.ErrorTypeRequired}}},
		{"mount path duplicate", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[1].MountPath = "/etc/nginx/conf.d" },
			[]want{{c0 + ".volumeMounts[1].mountPath", field.ErrorTypeInvalid}}},
		{"absolute subPath", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[2].SubPath = "/certs" },
			[]want{{c0 + ".volumeMounts[2].subPath", field.ErrorTypeInvalid}}},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []want{{"spec.restartPolicy", field.ErrorTypeNotSupported}}},
		{"dnsPolicy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, []want{{"spec.dnsPolicy", field.ErrorTypeNotSupported}}},
		{"dnsPolicy None without config", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, []want{{"spec.dnsConfig", field.ErrorTypeRequired}}},
		{"requests above limits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}, []want{{c0 + ".resources.requests", field.ErrorTypeInvalid}}},
		{"negative request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("-1")
		}, []want{{c0 + ".resources.requests[cpu]", field.ErrorTypeInvalid}}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["gpu"] = resource.MustParse("1")
		}, []want{{c0 + ".resources.requests[gpu]", field.ErrorTypeInvalid}}},
		{"extended resource request without limit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["example.com/gpu"] = resource.MustParse("1")
		}, []want{{c0 + ".resources.limits", field.ErrorTypeRequired}}},
		{"probe without handler", func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.TCPSocket = nil },
			[]want{{c0 + ".readinessProbe", field.ErrorTypeRequired}}},
		{"probe with two handlers", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe.Exec = &corev1.ExecAction{Command: []string{"true"}}
		}, []want{{c0 + ".readinessProbe.tcpSocket", field.ErrorTypeForbidden}}},
		{"liveness successThreshold", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2 },
			[]want{{c0 + ".livenessProbe.successThreshold", field.ErrorTypeInvalid}}},
		{"negative probe period", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.PeriodSeconds = -1 },
			[]want{{c0 + ".livenessProbe.periodSeconds", field.ErrorTypeInvalid}}},
		{"bad probe port name", func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromString("no_such") },
			[]want{{c0 + ".livenessProbe.httpGet.port", field.ErrorTypeInvalid}}},
		{"init container probe", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].ReadinessProbe = p.Spec.Containers[0].ReadinessProbe
		}, []want{{"spec.initContainers[0].readinessProbe", field.ErrorTypeForbidden}}},
		{"sidecar may have probes", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].RestartPolicy = new(corev1.ContainerRestartPolicyAlways)
			p.Spec.InitContainers[0].ReadinessProbe = p.Spec.Containers[0].ReadinessProbe
		}, nil},
		{"init container restartPolicy", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].RestartPolicy = new(corev1.ContainerRestartPolicy("Never"))
		}, []want{{"spec.initContainers[0].restartPolicy", field.ErrorTypeNotSupported}}},
		{"privileged without escalation", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = new(true) },
			[]want{{c0 + ".securityContext", field.ErrorTypeInvalid}}},
		{"negative runAsUser", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = new(int64(-1)) },
			[]want{{"spec.securityContext.runAsUser", field.ErrorTypeInvalid}}},
		{"toleration Exists with value", func(p *corev1.Pod) { p.Spec.Tolerations[0].Operator = corev1.TolerationOpExists },
			[]want{{"spec.tolerations[0].operator", field.ErrorTypeInvalid}}},
		{"toleration bad effect", func(p *corev1.Pod) { p.Spec.Tolerations[0].Effect = "Evict" },
			[]want{{"spec.tolerations[0].effect", field.ErrorTypeNotSupported}}},
		{"tolerationSeconds without NoExecute", func(p *corev1.Pod) { p.Spec.Tolerations[0].TolerationSeconds = new(int64(5)) },
			[]want{{"spec.tolerations[0].effect", field.ErrorTypeInvalid}}},
		{"bad nodeSelector", func(p *corev1.Pod) { p.Spec.NodeSelector["bad key!"] = "x" }, []want{{"spec.nodeSelector", field.ErrorTypeInvalid}}},
		{"activeDeadlineSeconds zero", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(0)) },
			[]want{{"spec.activeDeadlineSeconds", field.ErrorTypeInvalid}}},
		{"bad serviceAccountName", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Bad_SA" },
			[]want{{"spec.serviceAccountName", field.ErrorTypeInvalid}}},
		{"bad hostname", func(p *corev1.Pod) { p.Spec.Hostname = "a.b" }, []want{{"spec.hostname", field.ErrorTypeInvalid}}},
		{"ephemeral containers on create", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox", ImagePullPolicy: "IfNotPresent", TerminationMessagePolicy: "File"}}}
		}, []want{{"spec.ephemeralContainers", field.ErrorTypeForbidden}}},
		{"topology spread", func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 0, TopologyKey: "", WhenUnsatisfiable: "Maybe"}}
		}, []want{{"spec.topologySpreadConstraints[0].maxSkew", field.ErrorTypeInvalid},
			{"spec.topologySpreadConstraints[0].topologyKey", field.ErrorTypeRequired},
			{"spec.topologySpreadConstraints[0].whenUnsatisfiable", field.ErrorTypeNotSupported}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			tc.mutate(pod)
			checkErrors(t, PodStrategy{}.Validate(ctx, pod), tc.want...)
		})
	}
}

func TestPodValidateUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []want
	}{
		{"unchanged", func(*corev1.Pod) {}, nil},
		{"image", func(p *corev1.Pod) {
			p.Spec.Containers[0].Image = "nginx:1.28"
			p.Spec.InitContainers[0].Image = "busybox:1.37"
		}, nil},
		{"add toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: new(int64(10))})
		}, nil},
		{"change tolerationSeconds", func(p *corev1.Pod) { p.Spec.Tolerations[1].TolerationSeconds = new(int64(10)) }, nil},
		{"remove toleration", func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[1:] },
			[]want{{"spec.tolerations", field.ErrorTypeForbidden}}},
		{"set activeDeadlineSeconds", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }, nil},
		{"port", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 }, []want{{"spec", field.ErrorTypeForbidden}}},
		{"nodeName", func(p *corev1.Pod) { p.Spec.NodeName = "node-1" }, []want{{"spec", field.ErrorTypeForbidden}}},
		{"add container", func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, *p.Spec.Containers[0].DeepCopy()) },
			[]want{{"spec.containers", field.ErrorTypeForbidden}, {"spec.containers[1].name", field.ErrorTypeDuplicate}}},
		{"remove image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []want{{"spec.containers[0].image", field.ErrorTypeRequired}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := createdPod()
			pod := old.DeepCopy()
			tc.mutate(pod)
			PodStrategy{}.Default(pod)
			checkErrors(t, PodStrategy{}.ValidateUpdate(ctx, pod, old), tc.want...)
		})
	}

	// The forbidden message names the mutable fields and what changed.
	old := createdPod()
	pod := old.DeepCopy()
	pod.Spec.Containers[0].Ports[0].ContainerPort = 8080
	errs := PodStrategy{}.ValidateUpdate(ctx, pod, old)
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Detail, "pod updates may not change fields other than `spec.containers[*].image`") ||
		!strings.Contains(errs[0].Detail, "spec.containers") {
		t.Errorf("message: %v", errs)
	}

	// activeDeadlineSeconds may only decrease.
	old.Spec.ActiveDeadlineSeconds = new(int64(60))
	pod = old.DeepCopy()
	pod.Spec.ActiveDeadlineSeconds = new(int64(120))
	checkErrors(t, PodStrategy{}.ValidateUpdate(ctx, pod, old), want{"spec.activeDeadlineSeconds", field.ErrorTypeInvalid})
	pod.Spec.ActiveDeadlineSeconds = nil
	checkErrors(t, PodStrategy{}.ValidateUpdate(ctx, pod, old), want{"spec.activeDeadlineSeconds", field.ErrorTypeInvalid})
}

func TestPodValidateStatusUpdate(t *testing.T) {
	old := createdPod()
	old.Spec.RestartPolicy = corev1.RestartPolicyNever
	old.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []want
	}{
		{"running", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}}
		}, nil},
		{"bad phase", func(p *corev1.Pod) { p.Status.Phase = "Done" }, []want{{"status.phase", field.ErrorTypeNotSupported}}},
		{"bad pod IP", func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.300"}} },
			[]want{{"status.podIPs[0].ip", field.ErrorTypeInvalid}}},
		{"two IPv4 pod IPs", func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "10.0.0.6"}} },
			[]want{{"status.podIPs", field.ErrorTypeInvalid}}},
		{"qosClass changed", func(p *corev1.Pod) { p.Status.QOSClass = corev1.PodQOSGuaranteed },
			[]want{{"status.qosClass", field.ErrorTypeInvalid}}},
		{"restart terminated container", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "nginx", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		}, []want{{"status.containerStatuses[0].state", field.ErrorTypeForbidden}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := old.DeepCopy()
			tc.mutate(pod)
			checkErrors(t, PodStrategy{}.ValidateStatusUpdate(ctx, pod, old), tc.want...)
		})
	}
}

func TestPodSelectableFields(t *testing.T) {
	empty := PodStrategy{}.SelectableFields(&corev1.Pod{})
	pod := createdPod()
	pod.Spec.NodeName = "node-1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}}
	PodStrategy{}.Default(pod)
	got := PodStrategy{}.SelectableFields(pod)
	if len(got) != len(empty) || len(got) != 9 {
		t.Fatalf("key set depends on content: %v vs %v", got, empty)
	}
	for k, v := range map[string]string{"spec.nodeName": "node-1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.serviceAccountName": "default", "spec.hostNetwork": "false", "status.phase": "Pending", "status.podIP": "10.0.0.5"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

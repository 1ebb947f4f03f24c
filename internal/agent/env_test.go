package agent

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

type fakeObjects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (f fakeObjects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if cm, ok := f.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (f fakeObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "a", "B": "b", "EMPTY": ""}
	mapping := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"plain":          "plain",
		"$(A)":           "a",
		"x$(A)y$(B)z":    "xaybz",
		"$(MISSING)":     "$(MISSING)",
		"$$(A)":          "$(A)",
		"$$":             "$",
		"$(A":            "$(A",
		"a$":             "a$",
		"$x":             "$x",
		"$(EMPTY)-":      "-",
		"$()":            "$()",
		"$(A)$(A)$$$(B)": "aa$b",
	} {
		if got := expand(in, mapping); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	objects := fakeObjects{
		cms:     map[string]*corev1.ConfigMap{"ns/cm": {Data: map[string]string{"color": "blue", "bad-key": "x", "size": "L"}}},
		secrets: map[string]*corev1.Secret{"ns/sec": {Data: map[string][]byte{"pw": []byte("s3cret")}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"note": "hi"}},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"},
	}
	in := envInputs{podIPs: []string{"10.42.0.5"}, hostIPs: []string{"192.0.2.2"}, nodeName: "n1", objects: objects,
		allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}}
	ref := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	optional := true
	for _, tc := range []struct {
		name     string
		c        corev1.Container
		want     []string
		wantErr  string
		warnings int
	}{
		{
			name: "values and references to earlier variables",
			c:    corev1.Container{Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "$(A)-$(C)"}, {Name: "C", Value: "3"}, {Name: "A", Value: "override"}}},
			want: []string{"A=override", "B=1-$(C)", "C=3"},
		},
		{
			name: "downward API",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "NAME", ValueFrom: ref("metadata.name")}, {Name: "NS", ValueFrom: ref("metadata.namespace")},
				{Name: "UID", ValueFrom: ref("metadata.uid")}, {Name: "NODE", ValueFrom: ref("spec.nodeName")},
				{Name: "SA", ValueFrom: ref("spec.serviceAccountName")}, {Name: "IP", ValueFrom: ref("status.podIP")},
				{Name: "IPS", ValueFrom: ref("status.podIPs")}, {Name: "HOST", ValueFrom: ref("status.hostIP")},
				{Name: "APP", ValueFrom: ref("metadata.labels['app']")}, {Name: "NOTE", ValueFrom: ref("metadata.annotations['note']")},
			}},
			want: []string{"NAME=p", "NS=ns", "UID=u1", "NODE=n1", "SA=sa", "IP=10.42.0.5", "IPS=10.42.0.5", "HOST=192.0.2.2", "APP=web", "NOTE=hi"},
		},
		{
			name: "resources, with limits defaulting to allocatable",
			c: corev1.Container{
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
				Env: []corev1.EnvVar{
					{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "CPU_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
					{Name: "CPU_REQ_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
					{Name: "CPU_REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu"}}},
				}},
			want: []string{"MEM=64", "CPU_LIMIT=2", "CPU_REQ_M=250", "CPU_REQ=1"},
		},
		{
			name: "configMap and secret keys, envFrom with prefix",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
				Env: []corev1.EnvVar{
					{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "color"}}},
					{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "pw"}}},
					{Name: "CM_size", Value: "overridden"},
				}},
			// Any printable name without "=" is valid since Kubernetes 1.34.
			want: []string{"CM_bad-key=x", "CM_color=blue", "CM_size=overridden", "COLOR=blue", "PW=s3cret"},
		},
		{
			name: "optional references to missing objects and keys are skipped",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: &optional}}},
				Env: []corev1.EnvVar{
					{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: &optional}}},
					{Name: "Y", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "nokey", Optional: &optional}}},
					{Name: "Z", Value: "z"},
				}},
			want: []string{"Z=z"},
		},
		{
			name: "missing configMap",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}},
			wantErr: `configmap "nope" not found`,
		},
		{
			name: "missing secret key",
			c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "k"}}}}},
			wantErr: "couldn't find key k in Secret ns/sec",
		},
		{
			name:    "unsupported field",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: ref("spec.nope")}}},
			wantErr: `unsupported fieldRef "spec.nope"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars, warnings, err := resolveEnv(context.Background(), pod, &tc.c, in)
			if tc.wantErr != "" {
				var ce *configError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !asConfigError(err, &ce) {
					t.Fatalf("error %v, want a configError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vars {
				got = append(got, v.Name+"="+v.Value)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("env %v, want %v", got, tc.want)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings %v, want %d", warnings, tc.warnings)
			}
		})
	}
}

func asConfigError(err error, target **configError) bool {
	ce, ok := err.(*configError)
	if ok {
		*target = ce
	}
	return ok
}

func TestExpandAll(t *testing.T) {
	got := expandAll([]string{"echo", "$(A)", "$$(A)"}, []envVar{{"A", "x"}})
	if strings.Join(got, " ") != "echo x $(A)" {
		t.Errorf("expandAll = %v", got)
	}
	if expandAll(nil, nil) != nil {
		t.Error("expandAll(nil) is not nil")
	}
}

func TestServiceEnv(t *testing.T) {
	svc := func(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	all := map[string][]*corev1.Service{
		"default": {svc("default", "kubernetes", "10.43.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
			svc("default", "other", "10.43.0.9", corev1.ServicePort{Port: 1})},
		"ns": {svc("ns", "my-db", "10.43.0.5", corev1.ServicePort{Port: 5432}, corev1.ServicePort{Name: "metrics", Port: 9187, Protocol: corev1.ProtocolUDP}),
			svc("ns", "headless", "None", corev1.ServicePort{Port: 80})},
	}
	services := func(ns string) []*corev1.Service { return all[ns] }
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Env: []corev1.EnvVar{{Name: "URL", Value: "http://$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT)"}, {Name: "MY_DB_PORT", Value: "mine"}},
	}}}}
	vars, _, err := resolveEnv(context.Background(), pod, &pod.Spec.Containers[0], envInputs{services: services, objects: fakeObjects{}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range vars {
		got[v.Name] = v.Value
	}
	for k, want := range map[string]string{
		"URL":                           "http://10.43.0.5:5432",
		"MY_DB_PORT":                    "mine", // the container's own wins
		"MY_DB_SERVICE_HOST":            "10.43.0.5",
		"MY_DB_SERVICE_PORT":            "5432",
		"MY_DB_SERVICE_PORT_METRICS":    "9187",
		"MY_DB_PORT_5432_TCP":           "tcp://10.43.0.5:5432",
		"MY_DB_PORT_9187_UDP_PROTO":     "udp",
		"MY_DB_PORT_9187_UDP_ADDR":      "10.43.0.5",
		"KUBERNETES_SERVICE_HOST":       "10.43.0.1",
		"KUBERNETES_SERVICE_PORT":       "443",
		"KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT":               "tcp://10.43.0.1:443",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	for _, absent := range []string{"OTHER_SERVICE_HOST", "HEADLESS_SERVICE_HOST"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s is set", absent)
		}
	}
	// enableServiceLinks: false leaves only the kubernetes Service.
	off := false
	pod.Spec.EnableServiceLinks = &off
	vars, _, _ = resolveEnv(context.Background(), pod, &pod.Spec.Containers[0], envInputs{services: services, objects: fakeObjects{}})
	for _, v := range vars {
		if strings.HasPrefix(v.Name, "MY_DB_SERVICE") {
			t.Errorf("%s set without service links", v.Name)
		}
	}
}

package agent

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// objectSource fetches the ConfigMaps and Secrets a pod refers to.
type objectSource interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// envVar is one resolved variable.
type envVar struct{ Name, Value string }

// envInputs is what resolving a container's environment needs besides the
// pod and container.
type envInputs struct {
	podIPs      []string
	hostIPs     []string
	nodeName    string
	allocatable corev1.ResourceList
	objects     objectSource
	// services lists the Services of a namespace (for service links);
	// nil means none.
	services func(namespace string) []*corev1.Service
}

// configError is an error in a container's configuration the user must fix
// (CreateContainerConfigError).
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// resolveEnv computes a container's environment as the kubelet does:
// envFrom sources first, in order, then env entries, each of which may
// refer to earlier variables with $(NAME). Missing non-optional ConfigMaps,
// Secrets or keys are configErrors. warnings lists envFrom keys skipped for
// not being valid variable names.
func resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, in envInputs) (vars []envVar, warnings []string, err error) {
	svcVars := serviceEnv(pod, in.services)
	values := map[string]string{}
	var order []string
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			order = append(order, name)
		}
		values[name] = value
	}
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	getCM := func(name string, optional bool) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := in.objects.ConfigMap(ctx, pod.Namespace, name)
		if apierrors.IsNotFound(err) {
			if optional {
				cms[name] = nil
				return nil, nil
			}
			return nil, configErrorf("configmap %q not found", name)
		}
		if err != nil {
			return nil, err
		}
		cms[name] = cm
		return cm, nil
	}
	getSecret := func(name string, optional bool) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := in.objects.Secret(ctx, pod.Namespace, name)
		if apierrors.IsNotFound(err) {
			if optional {
				secrets[name] = nil
				return nil, nil
			}
			return nil, configErrorf("secret %q not found", name)
		}
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}

	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := getCM(from.ConfigMapRef.Name, deref(from.ConfigMapRef.Optional))
			if err != nil {
				return nil, nil, err
			}
			if cm != nil {
				data = cm.Data
			}
		case from.SecretRef != nil:
			s, err := getSecret(from.SecretRef.Name, deref(from.SecretRef.Optional))
			if err != nil {
				return nil, nil, err
			}
			if s != nil {
				data = map[string]string{}
				for k, v := range s.Data {
					data[k] = string(v)
				}
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var invalid []string
		for _, k := range keys {
			name := from.Prefix + k
			if errs := validation.IsEnvVarName(name); len(errs) > 0 {
				invalid = append(invalid, name)
				continue
			}
			set(name, data[k])
		}
		if len(invalid) > 0 {
			warnings = append(warnings, fmt.Sprintf("keys [%s] from the EnvFrom configMap or secret were skipped since they are invalid environment variable names", strings.Join(invalid, ", ")))
		}
	}

	for _, e := range c.Env {
		value := e.Value
		if e.ValueFrom == nil {
			value = expand(value, func(name string) (string, bool) {
				if v, ok := values[name]; ok {
					return v, ok
				}
				for _, sv := range svcVars {
					if sv.Name == name {
						return sv.Value, true
					}
				}
				return "", false
			})
			set(e.Name, value)
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := fieldRefValue(pod, vf.FieldRef.FieldPath, in)
			if err != nil {
				return nil, nil, err
			}
			set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			v, err := resourceFieldRefValue(pod, c, vf.ResourceFieldRef, in.allocatable)
			if err != nil {
				return nil, nil, err
			}
			set(e.Name, v)
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			optional := deref(ref.Optional)
			cm, err := getCM(ref.Name, optional)
			if err != nil {
				return nil, nil, err
			}
			if cm == nil {
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if b, bok := cm.BinaryData[ref.Key]; bok {
					v, ok = string(b), true
				}
			}
			if !ok {
				if optional {
					continue
				}
				return nil, nil, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, v)
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			optional := deref(ref.Optional)
			s, err := getSecret(ref.Name, optional)
			if err != nil {
				return nil, nil, err
			}
			if s == nil {
				continue
			}
			b, ok := s.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, nil, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			set(e.Name, string(b))
		default:
			return nil, nil, configErrorf("env %s: unsupported valueFrom", e.Name)
		}
	}
	for _, name := range order {
		vars = append(vars, envVar{Name: name, Value: values[name]})
	}
	// Service variables come last and never override the container's.
	for _, sv := range svcVars {
		if _, ok := values[sv.Name]; !ok {
			vars = append(vars, sv)
		}
	}
	return vars, warnings, nil
}

// serviceEnv returns the service-link variables a pod's containers get, as
// the kubelet makes them: for the Services of the pod's namespace (unless
// enableServiceLinks is false) and for the kubernetes Service of the
// default namespace, sorted by name.
func serviceEnv(pod *corev1.Pod, services func(string) []*corev1.Service) []envVar {
	if services == nil {
		return nil
	}
	chosen := map[string]*corev1.Service{}
	for _, svc := range services(metav1.NamespaceDefault) {
		if svc.Name == "kubernetes" && serviceIPSet(svc) {
			chosen[svc.Name] = svc
		}
	}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		for _, svc := range services(pod.Namespace) {
			if serviceIPSet(svc) {
				chosen[svc.Name] = svc
			}
		}
	}
	var out []envVar
	for _, svc := range chosen {
		out = append(out, serviceVars(svc)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func serviceIPSet(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone && len(svc.Spec.Ports) > 0
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }

// serviceVars are one Service's variables (Docker link style).
func serviceVars(svc *corev1.Service) []envVar {
	prefix := envName(svc.Name)
	ip := svc.Spec.ClusterIP
	out := []envVar{
		{prefix + "_SERVICE_HOST", ip},
		{prefix + "_SERVICE_PORT", strconv.Itoa(int(svc.Spec.Ports[0].Port))},
	}
	for i, sp := range svc.Spec.Ports {
		if sp.Name != "" {
			out = append(out, envVar{prefix + "_SERVICE_PORT_" + envName(sp.Name), strconv.Itoa(int(sp.Port))})
		}
		proto := string(corev1.ProtocolTCP)
		if sp.Protocol != "" {
			proto = string(sp.Protocol)
		}
		url := fmt.Sprintf("%s://%s", strings.ToLower(proto), net.JoinHostPort(ip, strconv.Itoa(int(sp.Port))))
		if i == 0 {
			out = append(out, envVar{prefix + "_PORT", url})
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		out = append(out,
			envVar{pp, url},
			envVar{pp + "_PROTO", strings.ToLower(proto)},
			envVar{pp + "_PORT", strconv.Itoa(int(sp.Port))},
			envVar{pp + "_ADDR", ip})
	}
	return out
}

func deref(b *bool) bool { return b != nil && *b }

// fieldRefValue resolves a downward-API field path.
func fieldRefValue(pod *corev1.Pod, fieldPath string, in envInputs) (string, error) {
	if key, ok := subscript(fieldPath, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(fieldPath, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	first := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return s[0]
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return in.nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(in.hostIPs), nil
	case "status.hostIPs":
		return strings.Join(in.hostIPs, ","), nil
	case "status.podIP":
		return first(in.podIPs), nil
	case "status.podIPs":
		return strings.Join(in.podIPs, ","), nil
	}
	return "", configErrorf("unsupported fieldRef %q", fieldPath)
}

// subscript parses `prefix['key']`.
func subscript(fieldPath, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fieldPath, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// resourceFieldRefValue resolves a resourceFieldRef, rounding up to the
// divisor as the kubelet does.
func resourceFieldRefValue(pod *corev1.Pod, self *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	c := self
	if ref.ContainerName != "" {
		c = nil
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ref.ContainerName {
				c = &pod.Spec.Containers[i]
			}
		}
		for i := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[i].Name == ref.ContainerName {
				c = &pod.Spec.InitContainers[i]
			}
		}
		if c == nil {
			return "", configErrorf("resourceFieldRef: no container %q", ref.ContainerName)
		}
	}
	q, ok := resourceValue(c, ref.Resource, allocatable)
	if !ok {
		return "", configErrorf("unsupported resourceFieldRef resource %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if strings.HasSuffix(ref.Resource, ".cpu") {
		v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
		return strconv.FormatInt(v, 10), nil
	}
	v := int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))
	return strconv.FormatInt(v, 10), nil
}

// expand replaces $(NAME) references that mapping knows, turns $$ into $,
// and leaves everything else as written (Kubernetes' expansion rules).
func expand(s string, mapping func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := mapping(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// expandAll expands every string of a command or args list.
func expandAll(list []string, vars []envVar) []string {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.Name] = v.Value
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = expand(s, func(n string) (string, bool) { v, ok := m[n]; return v, ok })
	}
	return out
}

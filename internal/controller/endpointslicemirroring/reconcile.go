//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package endpointslicemirroring

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	esutil "k8s.io/endpointslice/util"
	utilnet "k8s.io/utils/net"

	"github.com/havre/havre/internal/controller/endpoint"
)

// mirror is the desired slice of one subset's ports in one address family.
type mirror struct {
	ports    []discoveryv1.EndpointPort
	addrType discoveryv1.AddressType
	set      esutil.EndpointSet
}

// reconcile creates, updates and deletes mirrored slices so that they
// match ep.
func (c *Controller) reconcile(ctx context.Context, ep *corev1.Endpoints, existing []*discoveryv1.EndpointSlice) error {
	desired := map[string]*mirror{}
	invalid, skipped := 0, 0
	for _, subset := range endpoint.RepackSubsets(ep.Subsets) {
		ports := slicePorts(subset.Ports)
		added := 0
		add := func(a corev1.EndpointAddress, ready bool) {
			if added >= c.maxPerSubset {
				return
			}
			e, addrType, ok := toEndpoint(a, ready)
			if !ok {
				invalid++
				return
			}
			k := mirrorKey(ports, addrType)
			m := desired[k]
			if m == nil {
				m = &mirror{ports: ports, addrType: addrType, set: esutil.EndpointSet{}}
				desired[k] = m
			}
			m.set.Insert(e)
			added++
		}
		for _, a := range subset.Addresses {
			add(a, true)
		}
		for _, a := range subset.NotReadyAddresses {
			add(a, false)
		}
		skipped += len(subset.Addresses) + len(subset.NotReadyAddresses) - added
	}
	if invalid > 0 {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, reasonInvalidIP,
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", invalid)
	}
	if skipped > invalid {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, reasonTooManyToMirror,
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", c.maxPerSubset, skipped-invalid)
	}
	logSkipped(ep, invalid, skipped-invalid)

	have := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		k := mirrorKey(s.Ports, s.AddressType)
		have[k] = append(have[k], s)
	}
	var toCreate, toUpdate, toDelete []*discoveryv1.EndpointSlice
	for _, k := range sortedKeys(desired) {
		m := desired[k]
		current := have[k]
		name := ""
		if len(current) > 0 {
			// One slice per subset and family: extras go.
			toDelete = append(toDelete, current[1:]...)
			if upToDate(current[0], m.set, ep) {
				continue
			}
			name = current[0].Name
		}
		s := newSlice(ep, m, name)
		if name == "" {
			toCreate = append(toCreate, s)
		} else {
			toUpdate = append(toUpdate, s)
		}
	}
	for k, current := range have {
		if desired[k] == nil {
			toDelete = append(toDelete, current...)
		}
	}
	// Rather than create one slice and delete another of the same family,
	// rewrite the one to be deleted.
	for i := 0; i < len(toCreate); {
		j := slices.IndexFunc(toDelete, func(d *discoveryv1.EndpointSlice) bool { return d.AddressType == toCreate[i].AddressType })
		if j < 0 {
			i++
			continue
		}
		toCreate[i].Name, toCreate[i].GenerateName = toDelete[j].Name, ""
		toUpdate = append(toUpdate, toCreate[i])
		toCreate = slices.Delete(toCreate, i, i+1)
		toDelete = slices.Delete(toDelete, j, j+1)
	}

	client := c.client.DiscoveryV1().EndpointSlices(ep.Namespace)
	if ep.DeletionTimestamp == nil {
		for _, s := range toCreate {
			created, err := client.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("creating an EndpointSlice mirroring Endpoints %s/%s: %w", ep.Namespace, ep.Name, err)
			}
			c.tracker.Update(created)
		}
	}
	for _, s := range toUpdate {
		updated, err := client.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating EndpointSlice %s mirroring Endpoints %s/%s: %w", s.Name, ep.Namespace, ep.Name, err)
		}
		c.tracker.Update(updated)
	}
	for _, s := range toDelete {
		if err := client.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting EndpointSlice %s mirroring Endpoints %s/%s: %w", s.Name, ep.Namespace, ep.Name, err)
		}
		c.tracker.ExpectDeletion(s)
	}
	return nil
}

// upToDate reports whether slice s already mirrors set and ep's labels and
// annotations.
func upToDate(s *discoveryv1.EndpointSlice, set esutil.EndpointSet, ep *corev1.Endpoints) bool {
	if len(s.Endpoints) != set.Len() {
		return false
	}
	for i := range s.Endpoints {
		want := set.Get(&s.Endpoints[i])
		if want == nil || !esutil.EndpointsEqualBeyondHash(want, &s.Endpoints[i]) {
			return false
		}
	}
	return apiequality.Semantic.DeepEqual(mirroredLabels(ep), s.Labels) &&
		apiequality.Semantic.DeepEqual(mirroredAnnotations(ep), s.Annotations)
}

// newSlice is the slice mirroring m for ep, named name (or generated when
// name is empty).
func newSlice(ep *corev1.Endpoints, m *mirror, name string) *discoveryv1.EndpointSlice {
	owner := metav1.NewControllerRef(ep, corev1.SchemeGroupVersion.WithKind("Endpoints"))
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       ep.Namespace,
			Labels:          mirroredLabels(ep),
			Annotations:     mirroredAnnotations(ep),
			OwnerReferences: []metav1.OwnerReference{*owner},
		},
		AddressType: m.addrType,
		Ports:       m.ports,
		Endpoints:   make([]discoveryv1.Endpoint, 0, m.set.Len()),
	}
	if name == "" {
		s.GenerateName = ep.Name + "-"
		if len(apimachineryvalidation.NameIsDNSSubdomain(s.GenerateName, true)) != 0 {
			s.GenerateName = ep.Name
		}
	}
	for _, e := range m.set.UnsortedList() {
		s.Endpoints = append(s.Endpoints, *e)
	}
	// A stable order keeps rewrites minimal and readable.
	slices.SortFunc(s.Endpoints, func(a, b discoveryv1.Endpoint) int {
		return strings.Compare(a.Addresses[0], b.Addresses[0])
	})
	return s
}

// mirroredLabels are ep's labels with the service-name and managed-by
// labels set.
func mirroredLabels(ep *corev1.Endpoints) map[string]string {
	out := make(map[string]string, len(ep.Labels)+2)
	for k, v := range ep.Labels {
		out[k] = v
	}
	out[discoveryv1.LabelServiceName] = ep.Name
	out[discoveryv1.LabelManagedBy] = ControllerName
	return out
}

// mirroredAnnotations are ep's annotations but the trigger time and
// kubectl's last-applied configuration.
func mirroredAnnotations(ep *corev1.Endpoints) map[string]string {
	out := make(map[string]string, len(ep.Annotations))
	for k, v := range ep.Annotations {
		if k == corev1.EndpointsLastChangeTriggerTime || k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		out[k] = v
	}
	return out
}

// toEndpoint converts an Endpoints address; ok is false for an invalid IP.
func toEndpoint(a corev1.EndpointAddress, ready bool) (*discoveryv1.Endpoint, discoveryv1.AddressType, bool) {
	ip := utilnet.ParseIPSloppy(a.IP)
	if ip == nil {
		return nil, "", false
	}
	addrType := discoveryv1.AddressTypeIPv4
	if ip.To4() == nil {
		addrType = discoveryv1.AddressTypeIPv6
	}
	e := &discoveryv1.Endpoint{
		// Re-stringified, in case it was written irregularly.
		Addresses:  []string{ip.String()},
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  a.TargetRef,
		NodeName:   a.NodeName,
	}
	if a.Hostname != "" {
		e.Hostname = &a.Hostname
	}
	return e, addrType, true
}

func slicePorts(ports []corev1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(ports))
	for _, p := range ports {
		out = append(out, discoveryv1.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol, AppProtocol: p.AppProtocol})
	}
	return out
}

// mirrorKey identifies a slice by its address type and (unordered) ports.
func mirrorKey(ports []discoveryv1.EndpointPort, addrType discoveryv1.AddressType) string {
	keys := make([]string, 0, len(ports))
	for _, p := range ports {
		var name, proto, app string
		var port int32
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if p.AppProtocol != nil {
			app = *p.AppProtocol
		}
		if p.Port != nil {
			port = *p.Port
		}
		keys = append(keys, fmt.Sprintf("%s/%d/%s/%s", name, port, proto, app))
	}
	slices.Sort(keys)
	return string(addrType) + ":" + strings.Join(keys, ";")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

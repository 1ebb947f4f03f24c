package framework

import (
	"fmt"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"
)

// The requests counted for containers that set none, when scoring, as
// upstream's: 0.1 core and 200MB.
const (
	DefaultMilliCPURequest int64 = 100
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024
)

var nonZeroDefaults = corev1.ResourceList{
	corev1.ResourceCPU:    *resource.NewMilliQuantity(DefaultMilliCPURequest, resource.DecimalSI),
	corev1.ResourceMemory: *resource.NewQuantity(DefaultMemoryRequest, resource.BinarySI),
}

var generation atomic.Int64

// nextGeneration numbers every change of a NodeInfo, for the snapshot to
// copy only what changed.
func nextGeneration() int64 { return generation.Add(1) }

// Resource is an amount of compute resources.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the pods a node allows (only in allocatable).
	AllowedPodNumber int
	// ScalarResources are extended resources and hugepages.
	ScalarResources map[corev1.ResourceName]int64
}

// NewResource sums a resource list.
func NewResource(rl corev1.ResourceList) Resource {
	var r Resource
	r.Add(rl)
	return r
}

// Add adds a resource list.
func (r *Resource) Add(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.Memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		case corev1.ResourcePods:
			r.AllowedPodNumber += int(q.Value())
		default:
			if isScalarResource(name) {
				r.AddScalar(name, q.Value())
			}
		}
	}
}

// AddScalar adds an amount of a scalar resource.
func (r *Resource) AddScalar(name corev1.ResourceName, v int64) {
	if r.ScalarResources == nil {
		r.ScalarResources = map[corev1.ResourceName]int64{}
	}
	r.ScalarResources[name] += v
}

// AddResource adds (sign 1) or subtracts (sign -1) another amount.
func (r *Resource) AddResource(o *Resource, sign int64) {
	r.MilliCPU += sign * o.MilliCPU
	r.Memory += sign * o.Memory
	r.EphemeralStorage += sign * o.EphemeralStorage
	for name, v := range o.ScalarResources {
		r.AddScalar(name, sign*v)
	}
}

// Clone copies r.
func (r Resource) Clone() Resource {
	if r.ScalarResources != nil {
		m := make(map[corev1.ResourceName]int64, len(r.ScalarResources))
		for k, v := range r.ScalarResources {
			m[k] = v
		}
		r.ScalarResources = m
	}
	return r
}

// Get returns the amount of one resource.
func (r *Resource) Get(name corev1.ResourceName) int64 {
	switch name {
	case corev1.ResourceCPU:
		return r.MilliCPU
	case corev1.ResourceMemory:
		return r.Memory
	case corev1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	case corev1.ResourcePods:
		return int64(r.AllowedPodNumber)
	}
	return r.ScalarResources[name]
}

// isScalarResource: extended resources (names with a domain prefix),
// prefixed native resources, hugepages and attachable volumes.
func isScalarResource(name corev1.ResourceName) bool {
	s := string(name)
	return strings.HasPrefix(s, corev1.ResourceHugePagesPrefix) || strings.HasPrefix(s, "attachable-volumes-") ||
		strings.Contains(s, "/") && !strings.HasPrefix(s, corev1.DefaultResourceRequestsPrefix)
}

// AffinityTerm is a parsed pod (anti-)affinity term.
type AffinityTerm struct {
	Namespaces        sets.Set[string]
	Selector          labels.Selector
	TopologyKey       string
	NamespaceSelector labels.Selector
}

// Matches reports whether pod is selected by the term; nsLabels are the
// labels of pod's namespace.
func (t *AffinityTerm) Matches(pod *corev1.Pod, nsLabels labels.Set) bool {
	if t.Namespaces.Has(pod.Namespace) || t.NamespaceSelector.Matches(nsLabels) {
		return t.Selector.Matches(labels.Set(pod.Labels))
	}
	return false
}

// WeightedAffinityTerm is a preferred term with its weight.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// PodInfo is a pod with what the scheduler derives from it once: its
// requests and parsed affinity terms.
type PodInfo struct {
	Pod                        *corev1.Pod
	RequiredAffinityTerms      []AffinityTerm
	RequiredAntiAffinityTerms  []AffinityTerm
	PreferredAffinityTerms     []WeightedAffinityTerm
	PreferredAntiAffinityTerms []WeightedAffinityTerm
	// Requests are the pod's effective requests (init containers,
	// sidecars, overhead); NonZeroRequests count defaults for unset CPU
	// and memory, for scoring.
	Requests        Resource
	NonZeroRequests Resource
	// ParseError is set when an affinity term could not be parsed.
	ParseError error
}

// NewPodInfo derives a PodInfo.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{}
	pi.Update(pod)
	return pi
}

// Update re-derives pi from pod.
func (pi *PodInfo) Update(pod *corev1.Pod) {
	*pi = PodInfo{Pod: pod}
	pi.Requests = NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	nz := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{NonMissingContainerRequests: nonZeroDefaults})
	pi.NonZeroRequests = Resource{MilliCPU: nz.Cpu().MilliValue(), Memory: nz.Memory().Value()}
	aff := pod.Spec.Affinity
	if aff == nil {
		return
	}
	var errs []error
	if a := aff.PodAffinity; a != nil {
		pi.RequiredAffinityTerms = parseTerms(pod, a.RequiredDuringSchedulingIgnoredDuringExecution, &errs)
		pi.PreferredAffinityTerms = parseWeightedTerms(pod, a.PreferredDuringSchedulingIgnoredDuringExecution, &errs)
	}
	if a := aff.PodAntiAffinity; a != nil {
		pi.RequiredAntiAffinityTerms = parseTerms(pod, a.RequiredDuringSchedulingIgnoredDuringExecution, &errs)
		pi.PreferredAntiAffinityTerms = parseWeightedTerms(pod, a.PreferredDuringSchedulingIgnoredDuringExecution, &errs)
	}
	if len(errs) > 0 {
		pi.ParseError = errs[0]
	}
}

// HasAffinity reports whether the pod has any (anti-)affinity term.
func (pi *PodInfo) HasAffinity() bool {
	return len(pi.RequiredAffinityTerms)+len(pi.RequiredAntiAffinityTerms)+
		len(pi.PreferredAffinityTerms)+len(pi.PreferredAntiAffinityTerms) > 0
}

func parseTerms(pod *corev1.Pod, terms []corev1.PodAffinityTerm, errs *[]error) []AffinityTerm {
	out := make([]AffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := NewAffinityTerm(pod, &terms[i])
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		out = append(out, t)
	}
	return out
}

func parseWeightedTerms(pod *corev1.Pod, terms []corev1.WeightedPodAffinityTerm, errs *[]error) []WeightedAffinityTerm {
	out := make([]WeightedAffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := NewAffinityTerm(pod, &terms[i].PodAffinityTerm)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		out = append(out, WeightedAffinityTerm{AffinityTerm: t, Weight: terms[i].Weight})
	}
	return out
}

// NewAffinityTerm parses one term of pod: without namespaces and
// namespaceSelector it selects pods in pod's namespace; matchLabelKeys
// and mismatchLabelKeys are merged into the selector with pod's values.
func NewAffinityTerm(pod *corev1.Pod, term *corev1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, err
	}
	if term.LabelSelector == nil {
		sel = labels.Nothing()
	}
	add := func(keys []string, op selection.Operator) error {
		for _, k := range keys {
			v, ok := pod.Labels[k]
			if !ok {
				continue
			}
			r, err := labels.NewRequirement(k, op, []string{v})
			if err != nil {
				return err
			}
			sel = sel.Add(*r)
		}
		return nil
	}
	if err := add(term.MatchLabelKeys, selection.In); err != nil {
		return AffinityTerm{}, err
	}
	if err := add(term.MismatchLabelKeys, selection.NotIn); err != nil {
		return AffinityTerm{}, err
	}
	t := AffinityTerm{Namespaces: sets.New(term.Namespaces...), Selector: sel, TopologyKey: term.TopologyKey, NamespaceSelector: labels.Nothing()}
	if term.NamespaceSelector != nil {
		if t.NamespaceSelector, err = metav1.LabelSelectorAsSelector(term.NamespaceSelector); err != nil {
			return AffinityTerm{}, err
		}
	} else if len(term.Namespaces) == 0 {
		t.Namespaces.Insert(pod.Namespace)
	}
	return t, nil
}

// ProtocolPort is a host port and its protocol.
type ProtocolPort struct {
	Protocol string
	Port     int32
}

// HostPortInfo is the host ports in use on a node, by host IP.
type HostPortInfo map[string]sets.Set[ProtocolPort]

const anyIP = "0.0.0.0"

func sanitize(ip, protocol string) (string, string) {
	if ip == "" {
		ip = anyIP
	}
	if protocol == "" {
		protocol = string(corev1.ProtocolTCP)
	}
	return ip, protocol
}

// Add marks a port as used.
func (h HostPortInfo) Add(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = sanitize(ip, protocol)
	if h[ip] == nil {
		h[ip] = sets.New[ProtocolPort]()
	}
	h[ip].Insert(ProtocolPort{protocol, port})
}

// Remove frees a port.
func (h HostPortInfo) Remove(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = sanitize(ip, protocol)
	if s := h[ip]; s != nil {
		s.Delete(ProtocolPort{protocol, port})
		if s.Len() == 0 {
			delete(h, ip)
		}
	}
}

// CheckConflict reports whether a port is taken: 0.0.0.0 conflicts with
// every address.
func (h HostPortInfo) CheckConflict(ip, protocol string, port int32) bool {
	if port <= 0 {
		return false
	}
	ip, protocol = sanitize(ip, protocol)
	pp := ProtocolPort{protocol, port}
	if ip == anyIP {
		for _, s := range h {
			if s.Has(pp) {
				return true
			}
		}
		return false
	}
	return h[ip].Has(pp) || h[anyIP].Has(pp)
}

// NodeInfo is the scheduler's view of a node: the node and the pods
// assigned or assumed to it, with their sums.
type NodeInfo struct {
	node *corev1.Node
	// Pods on the node, and those of them with (anti-)affinity terms and
	// with required anti-affinity terms.
	Pods                         []*PodInfo
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo
	UsedPorts                    HostPortInfo
	// Requested sums the pods' requests; NonZeroRequested with defaults
	// for unset CPU and memory.
	Requested        Resource
	NonZeroRequested Resource
	Allocatable      Resource
	// Generation changes on every change.
	Generation int64
}

// NewNodeInfo returns a node info holding pods, without a node.
func NewNodeInfo(pods ...*corev1.Pod) *NodeInfo {
	n := &NodeInfo{UsedPorts: HostPortInfo{}, Generation: nextGeneration()}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

// Node returns the node, nil when only its pods are known.
func (n *NodeInfo) Node() *corev1.Node { return n.node }

// SetNode sets the node object.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.node = node
	n.Allocatable = NewResource(node.Status.Allocatable)
	n.Generation = nextGeneration()
}

// RemoveNode forgets the node object, keeping its pods.
func (n *NodeInfo) RemoveNode() {
	n.node = nil
	n.Generation = nextGeneration()
}

// AddPod adds a pod.
func (n *NodeInfo) AddPod(pod *corev1.Pod) { n.AddPodInfo(NewPodInfo(pod)) }

// AddPodInfo adds a pod already derived.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.update(pi, 1)
}

// RemovePod removes a pod by UID.
func (n *NodeInfo) RemovePod(pod *corev1.Pod) error {
	n.PodsWithAffinity = removeFrom(n.PodsWithAffinity, pod)
	n.PodsWithRequiredAntiAffinity = removeFrom(n.PodsWithRequiredAntiAffinity, pod)
	for i, pi := range n.Pods {
		if pi.Pod.UID == pod.UID {
			last := len(n.Pods) - 1
			n.Pods[i] = n.Pods[last]
			n.Pods[last] = nil
			n.Pods = n.Pods[:last]
			n.update(pi, -1)
			return nil
		}
	}
	name := "<nil>"
	if n.node != nil {
		name = n.node.Name
	}
	return fmt.Errorf("no pod %s/%s in the node info of %s", pod.Namespace, pod.Name, name)
}

func removeFrom(s []*PodInfo, pod *corev1.Pod) []*PodInfo {
	for i, pi := range s {
		if pi.Pod.UID == pod.UID {
			last := len(s) - 1
			s[i] = s[last]
			s[last] = nil
			return s[:last]
		}
	}
	return s
}

func (n *NodeInfo) update(pi *PodInfo, sign int64) {
	n.Requested.AddResource(&pi.Requests, sign)
	n.NonZeroRequested.AddResource(&pi.NonZeroRequests, sign)
	for _, c := range pi.Pod.Spec.Containers {
		for _, p := range c.Ports {
			if sign > 0 {
				n.UsedPorts.Add(p.HostIP, string(p.Protocol), p.HostPort)
			} else {
				n.UsedPorts.Remove(p.HostIP, string(p.Protocol), p.HostPort)
			}
		}
	}
	n.Generation = nextGeneration()
}

// Clone copies the node info; the pods themselves are shared.
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{
		node:             n.node,
		Pods:             append([]*PodInfo(nil), n.Pods...),
		Requested:        n.Requested.Clone(),
		NonZeroRequested: n.NonZeroRequested.Clone(),
		Allocatable:      n.Allocatable.Clone(),
		UsedPorts:        make(HostPortInfo, len(n.UsedPorts)),
		Generation:       n.Generation,
	}
	for ip, s := range n.UsedPorts {
		c.UsedPorts[ip] = s.Clone()
	}
	if len(n.PodsWithAffinity) > 0 {
		c.PodsWithAffinity = append([]*PodInfo(nil), n.PodsWithAffinity...)
	}
	if len(n.PodsWithRequiredAntiAffinity) > 0 {
		c.PodsWithRequiredAntiAffinity = append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...)
	}
	return c
}

// PodKey is the cache key of a pod: its UID.
func PodKey(pod *corev1.Pod) string { return string(pod.UID) }

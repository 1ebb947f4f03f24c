package core

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// NodeStrategy governs nodes. Nodes may set their status on create.
type NodeStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = NodeStrategy{}

// Default keeps podCIDR and podCIDRs[0] in step (podCIDR wins, as in
// upstream's v1 conversion) and defaults allocatable to capacity.
func (NodeStrategy) Default(obj runtime.Object) {
	node := obj.(*corev1.Node)
	spec := &node.Spec
	if spec.PodCIDR != "" && (len(spec.PodCIDRs) == 0 || spec.PodCIDRs[0] != spec.PodCIDR) {
		spec.PodCIDRs = []string{spec.PodCIDR}
	}
	if len(spec.PodCIDRs) > 0 {
		spec.PodCIDR = spec.PodCIDRs[0]
	}
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = node.Status.Capacity.DeepCopy()
	}
}

// Validate checks pod CIDRs, taints and the reported resources.
func (NodeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	node := obj.(*corev1.Node)
	p := field.NewPath("spec")
	errs := validatePodCIDRs(node.Spec.PodCIDRs, p.Child("podCIDRs"))
	errs = append(errs, validateTaints(node.Spec.Taints, p.Child("taints"))...)
	return append(errs, validateNodeStatus(&node.Status)...)
}

func validatePodCIDRs(cidrs []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	v4, v6 := 0, 0
	for i, c := range cidrs {
		if e := ValidateCIDR(c, fldPath.Index(i)); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if ip, _, _ := net.ParseCIDR(c); ip.To4() != nil {
			v4++
		} else {
			v6++
		}
	}
	if len(cidrs) > 2 || v4 > 1 || v6 > 1 {
		errs = append(errs, field.Invalid(fldPath, cidrs, "may specify no more than one CIDR for each IP family"))
	}
	return errs
}

func validateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := sets.New[string]()
	for i, t := range taints {
		p := fldPath.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		errs = append(errs, invalidEach(t.Value, validation.IsValidLabelValue(t.Value), p.Child("value"))...)
		errs = append(errs, ValidateTaintEffect(t.Effect, p.Child("effect"))...)
		if key := string(t.Effect) + "/" + t.Key; seen.Has(key) {
			dup := field.Duplicate(p, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
		} else {
			seen.Insert(key)
		}
	}
	return errs
}

func validateNodeStatus(st *corev1.NodeStatus) field.ErrorList {
	p := field.NewPath("status")
	errs := ValidateResourceList(st.Capacity, p.Child("capacity"))
	errs = append(errs, ValidateResourceList(st.Allocatable, p.Child("allocatable"))...)
	for i, a := range st.Addresses {
		if a.Type == "" {
			errs = append(errs, field.Required(p.Child("addresses").Index(i).Child("type"), ""))
		}
	}
	return errs
}

// ValidateUpdate allows podCIDRs and providerID to be set once only.
func (s NodeStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	node, oldNode := obj.(*corev1.Node), old.(*corev1.Node)
	errs := s.Validate(ctx, obj)
	if len(oldNode.Spec.PodCIDRs) > 0 && !sets.New(oldNode.Spec.PodCIDRs...).Equal(sets.New(node.Spec.PodCIDRs...)) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if oldNode.Spec.ProviderID != "" && oldNode.Spec.ProviderID != node.Spec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

// ValidateStatusUpdate checks the reported resources and addresses.
func (NodeStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	return validateNodeStatus(&obj.(*corev1.Node).Status)
}

// SelectableFields returns spec.unschedulable.
func (NodeStrategy) SelectableFields(obj runtime.Object) fields.Set {
	if obj.(*corev1.Node).Spec.Unschedulable {
		return fields.Set{"spec.unschedulable": "true"}
	}
	return fields.Set{"spec.unschedulable": "false"}
}

package admissionregistration

// The strategies of MutatingAdmissionPolicies and their bindings, as
// upstream's: defaults, validation and compilation of the mutations'
// expressions (with the patch types in scope).

import (
	"context"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"

	"github.com/havre/havre/internal/registry"
)

var (
	supportedPatchTypes           = []admissionregistrationv1.PatchType{admissionregistrationv1.PatchTypeApplyConfiguration, admissionregistrationv1.PatchTypeJSONPatch}
	supportedReinvocationPolicies = []admissionregistrationv1.ReinvocationPolicyType{admissionregistrationv1.NeverReinvocationPolicy, admissionregistrationv1.IfNeededReinvocationPolicy}
)

// MutatingAdmissionPolicyStrategy governs mutatingadmissionpolicies.
type MutatingAdmissionPolicyStrategy struct{ registry.DefaultStrategy }

// Default sets upstream's defaults: failurePolicy Fail, reinvocationPolicy
// Never, and those of the match constraints.
func (MutatingAdmissionPolicyStrategy) Default(obj runtime.Object) {
	spec := &obj.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec
	if spec.FailurePolicy == nil {
		p := admissionregistrationv1.Fail
		spec.FailurePolicy = &p
	}
	if spec.ReinvocationPolicy == "" {
		spec.ReinvocationPolicy = admissionregistrationv1.NeverReinvocationPolicy
	}
	defaultMatchResources(spec.MatchConstraints)
}

// Validate checks a new policy; its expressions are compiled.
func (MutatingAdmissionPolicyStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validateMutatingPolicySpec(&obj.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec, nil, field.NewPath("spec"))
}

// ValidateUpdate checks an updated policy; expressions already stored are
// compiled in the stored-expressions environment.
func (MutatingAdmissionPolicyStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validateMutatingPolicySpec(&obj.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec,
		mutatingPolicyExpressions(&old.(*admissionregistrationv1.MutatingAdmissionPolicy).Spec), field.NewPath("spec"))
}

// MutatingAdmissionPolicyBindingStrategy governs
// mutatingadmissionpolicybindings.
type MutatingAdmissionPolicyBindingStrategy struct{ registry.DefaultStrategy }

// Default sets upstream's defaults: those of the match resources and
// paramRef.parameterNotFoundAction Deny.
func (MutatingAdmissionPolicyBindingStrategy) Default(obj runtime.Object) {
	spec := &obj.(*admissionregistrationv1.MutatingAdmissionPolicyBinding).Spec
	defaultMatchResources(spec.MatchResources)
	if spec.ParamRef != nil && spec.ParamRef.ParameterNotFoundAction == nil {
		a := admissionregistrationv1.DenyAction
		spec.ParamRef.ParameterNotFoundAction = &a
	}
}

// Validate checks a new binding.
func (MutatingAdmissionPolicyBindingStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*admissionregistrationv1.MutatingAdmissionPolicyBinding).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if spec.PolicyName == "" {
		errs = append(errs, field.Required(p.Child("policyName"), ""))
	} else {
		for _, msg := range apivalidation.NameIsDNSSubdomain(spec.PolicyName, false) {
			errs = append(errs, field.Invalid(p.Child("policyName"), spec.PolicyName, msg))
		}
	}
	if spec.MatchResources != nil {
		errs = append(errs, validateMatchResources(spec.MatchResources, p.Child("matchResources"))...)
	}
	return append(errs, validateParamRef(spec.ParamRef, p.Child("paramRef"))...)
}

// ValidateUpdate validates like Validate; bindings are mutable.
func (s MutatingAdmissionPolicyBindingStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func mutatingPolicyExpressions(spec *admissionregistrationv1.MutatingAdmissionPolicySpec) sets.Set[string] {
	s := sets.New[string]()
	for _, m := range spec.Mutations {
		if m.ApplyConfiguration != nil {
			s.Insert(m.ApplyConfiguration.Expression)
		}
		if m.JSONPatch != nil {
			s.Insert(m.JSONPatch.Expression)
		}
	}
	for _, m := range spec.MatchConditions {
		s.Insert(m.Expression)
	}
	for _, v := range spec.Variables {
		s.Insert(v.Expression)
	}
	return s
}

func validateMutatingPolicySpec(spec *admissionregistrationv1.MutatingAdmissionPolicySpec, stored sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.FailurePolicy == nil {
		errs = append(errs, field.Required(p.Child("failurePolicy"), ""))
	} else if !sets.New(supportedFailurePolicies...).Has(*spec.FailurePolicy) {
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *spec.FailurePolicy, supportedFailurePolicies))
	}
	if spec.ParamKind != nil {
		errs = append(errs, validateParamKind(spec.ParamKind, p.Child("paramKind"))...)
	}
	if spec.MatchConstraints == nil {
		errs = append(errs, field.Required(p.Child("matchConstraints"), ""))
	} else {
		errs = append(errs, validateMatchResources(spec.MatchConstraints, p.Child("matchConstraints"))...)
		if len(spec.MatchConstraints.ResourceRules) == 0 {
			errs = append(errs, field.Required(p.Child("matchConstraints", "resourceRules"), ""))
		}
	}
	if !sets.New(supportedReinvocationPolicies...).Has(spec.ReinvocationPolicy) {
		errs = append(errs, field.NotSupported(p.Child("reinvocationPolicy"), spec.ReinvocationPolicy, supportedReinvocationPolicies))
	}
	if len(spec.Mutations) == 0 {
		errs = append(errs, field.Required(p.Child("mutations"), "mutations must contain at least one item"))
	}

	c, err := newPolicyCompiler(stored)
	if err != nil {
		return append(errs, field.InternalError(p, err))
	}
	opts := plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil, HasAuthorizer: true}
	errs = append(errs, validateVariables(c, spec.Variables, opts, p.Child("variables"))...)
	errs = append(errs, validatePolicyMatchConditions(c, spec.MatchConditions, opts, p.Child("matchConditions"))...)

	patchOpts := opts
	patchOpts.HasPatchTypes = true
	for i, m := range spec.Mutations {
		mp := p.Child("mutations").Index(i)
		switch m.PatchType {
		case admissionregistrationv1.PatchTypeApplyConfiguration:
			if m.JSONPatch != nil {
				errs = append(errs, field.Forbidden(mp.Child("jsonPatch"), "must not be specified when patchType is ApplyConfiguration"))
			}
			if m.ApplyConfiguration == nil || strings.TrimSpace(m.ApplyConfiguration.Expression) == "" {
				errs = append(errs, field.Required(mp.Child("applyConfiguration", "expression"), "must be specified when patchType is ApplyConfiguration"))
				continue
			}
			errs = append(errs, c.compile(&patch.ApplyConfigurationCondition{Expression: m.ApplyConfiguration.Expression}, patchOpts, mp.Child("applyConfiguration", "expression"))...)
		case admissionregistrationv1.PatchTypeJSONPatch:
			if m.ApplyConfiguration != nil {
				errs = append(errs, field.Forbidden(mp.Child("applyConfiguration"), "must not be specified when patchType is JSONPatch"))
			}
			if m.JSONPatch == nil || strings.TrimSpace(m.JSONPatch.Expression) == "" {
				errs = append(errs, field.Required(mp.Child("jsonPatch", "expression"), "must be specified when patchType is JSONPatch"))
				continue
			}
			errs = append(errs, c.compile(&patch.JSONPatchCondition{Expression: m.JSONPatch.Expression}, patchOpts, mp.Child("jsonPatch", "expression"))...)
		case "":
			errs = append(errs, field.Required(mp.Child("patchType"), ""))
		default:
			errs = append(errs, field.NotSupported(mp.Child("patchType"), m.PatchType, supportedPatchTypes))
		}
	}
	return errs
}

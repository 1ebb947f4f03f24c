package admissionregistration

// The strategies of ValidatingAdmissionPolicies and their bindings:
// upstream's defaults and validation, with upstream's field paths. CEL
// expressions are compiled at create and update, as kube-apiserver does,
// and compile errors are reported on the expression's field.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/havre/havre/internal/registry"
)

// Upstream's limits.
const (
	maxMatchConditions = 64
)

var (
	supportedFailurePolicies  = []admissionregistrationv1.FailurePolicyType{admissionregistrationv1.Fail, admissionregistrationv1.Ignore}
	supportedMatchPolicies    = []admissionregistrationv1.MatchPolicyType{admissionregistrationv1.Exact, admissionregistrationv1.Equivalent}
	supportedScopes           = []admissionregistrationv1.ScopeType{admissionregistrationv1.ClusterScope, admissionregistrationv1.NamespacedScope, admissionregistrationv1.AllScopes}
	policyOperations          = []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll, admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete, admissionregistrationv1.Connect}
	supportedReasons          = []metav1.StatusReason{metav1.StatusReasonForbidden, metav1.StatusReasonInvalid, metav1.StatusReasonRequestEntityTooLarge, metav1.StatusReasonUnauthorized}
	supportedValidationAction = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit}
	supportedNotFoundActions  = []admissionregistrationv1.ParameterNotFoundActionType{admissionregistrationv1.AllowAction, admissionregistrationv1.DenyAction}
)

// ValidatingAdmissionPolicyStrategy governs validatingadmissionpolicies.
type ValidatingAdmissionPolicyStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = ValidatingAdmissionPolicyStrategy{}

// Default sets upstream's defaults: failurePolicy Fail, and those of the
// match constraints.
func (ValidatingAdmissionPolicyStrategy) Default(obj runtime.Object) {
	spec := &obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec
	if spec.FailurePolicy == nil {
		p := admissionregistrationv1.Fail
		spec.FailurePolicy = &p
	}
	defaultMatchResources(spec.MatchConstraints)
}

// PrepareForCreate clears the status, which the type-checking controller
// writes.
func (ValidatingAdmissionPolicyStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Status = admissionregistrationv1.ValidatingAdmissionPolicyStatus{}
}

// Validate checks a new policy; its expressions are compiled.
func (ValidatingAdmissionPolicyStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validatePolicySpec(&obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec, nil, field.NewPath("spec"))
}

// ValidateUpdate checks an updated policy. Expressions the stored policy
// already had are compiled in the environment of stored expressions, as
// upstream does, so that a policy stays updatable when the CEL library
// narrows.
func (ValidatingAdmissionPolicyStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	oldSpec := &old.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec
	return validatePolicySpec(&obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Spec, policyExpressions(oldSpec), field.NewPath("spec"))
}

// ValidateStatusUpdate checks the conditions.
func (ValidatingAdmissionPolicyStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st := &obj.(*admissionregistrationv1.ValidatingAdmissionPolicy).Status
	return metav1validation.ValidateConditions(st.Conditions, field.NewPath("status", "conditions"))
}

// ValidatingAdmissionPolicyBindingStrategy governs
// validatingadmissionpolicybindings.
type ValidatingAdmissionPolicyBindingStrategy struct{ registry.DefaultStrategy }

// Default sets upstream's defaults: those of the match resources and
// paramRef.parameterNotFoundAction Deny.
func (ValidatingAdmissionPolicyBindingStrategy) Default(obj runtime.Object) {
	spec := &obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Spec
	defaultMatchResources(spec.MatchResources)
	if spec.ParamRef != nil && spec.ParamRef.ParameterNotFoundAction == nil {
		a := admissionregistrationv1.DenyAction
		spec.ParamRef.ParameterNotFoundAction = &a
	}
}

// Validate checks a new binding.
func (ValidatingAdmissionPolicyBindingStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validateBindingSpec(&obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Spec, field.NewPath("spec"))
}

// ValidateUpdate validates like Validate; bindings are mutable.
func (s ValidatingAdmissionPolicyBindingStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.MatchPolicy == nil {
		p := admissionregistrationv1.Equivalent
		m.MatchPolicy = &p
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	for _, rules := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				s := admissionregistrationv1.AllScopes
				rules[i].Scope = &s
			}
		}
	}
}

// policyExpressions returns every expression of a policy.
func policyExpressions(spec *admissionregistrationv1.ValidatingAdmissionPolicySpec) sets.Set[string] {
	s := sets.New[string]()
	for _, v := range spec.Validations {
		s.Insert(v.Expression, v.MessageExpression)
	}
	for _, m := range spec.MatchConditions {
		s.Insert(m.Expression)
	}
	for _, v := range spec.Variables {
		s.Insert(v.Expression)
	}
	for _, a := range spec.AuditAnnotations {
		s.Insert(a.ValueExpression)
	}
	return s
}

// policyCompiler compiles a policy's expressions with its variables in
// scope: those already stored in the stored-expressions environment, new
// ones in the new-expressions environment.
type policyCompiler struct {
	compiler *plugincel.CompositedCompiler
	stored   sets.Set[string]
}

var baseEnvSet = environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())

func newPolicyCompiler(stored sets.Set[string]) (*policyCompiler, error) {
	c, err := plugincel.NewCompositedCompiler(baseEnvSet)
	if err != nil {
		return nil, err
	}
	return &policyCompiler{compiler: c, stored: stored}, nil
}

func (c *policyCompiler) mode(expr string) environment.Type {
	if c.stored.Has(expr) {
		return environment.StoredExpressions
	}
	return environment.NewExpressions
}

func (c *policyCompiler) compile(accessor plugincel.ExpressionAccessor, opts plugincel.OptionalVariableDeclarations, p *field.Path) field.ErrorList {
	r := c.compiler.CompileCELExpression(accessor, opts, c.mode(accessor.GetExpression()))
	if r.Error == nil {
		return nil
	}
	return field.ErrorList{celError(p, accessor.GetExpression(), r.Error)}
}

// celError reports a compile error as upstream does: Invalid with the
// compiler's detail.
func celError(p *field.Path, expr string, err error) *field.Error {
	var celErr *apiservercel.Error
	if errors.As(err, &celErr) {
		switch celErr.Type {
		case apiservercel.ErrorTypeRequired:
			return field.Required(p, celErr.Detail)
		case apiservercel.ErrorTypeInvalid:
			return field.Invalid(p, expr, celErr.Detail)
		}
	}
	return field.InternalError(p, err)
}

func validatePolicySpec(spec *admissionregistrationv1.ValidatingAdmissionPolicySpec, stored sets.Set[string], p *field.Path) field.ErrorList {
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
	if len(spec.Validations) == 0 && len(spec.AuditAnnotations) == 0 {
		errs = append(errs, field.Required(p.Child("validations"), "validations or auditAnnotations must contain at least one item"))
	}

	c, err := newPolicyCompiler(stored)
	if err != nil {
		return append(errs, field.InternalError(p, err))
	}
	hasParams := spec.ParamKind != nil
	withAuthz := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	noAuthz := plugincel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: false}

	errs = append(errs, validateVariables(c, spec.Variables, withAuthz, p.Child("variables"))...)

	errs = append(errs, validatePolicyMatchConditions(c, spec.MatchConditions, withAuthz, p.Child("matchConditions"))...)

	for i, v := range spec.Validations {
		vp := p.Child("validations").Index(i)
		if strings.TrimSpace(v.Expression) == "" {
			errs = append(errs, field.Required(vp.Child("expression"), "expression is not specified"))
		} else {
			errs = append(errs, c.compile(&validating.ValidationCondition{Expression: v.Expression}, withAuthz, vp.Child("expression"))...)
		}
		if len(v.Message) > 0 && strings.TrimSpace(v.Message) == "" {
			errs = append(errs, field.Invalid(vp.Child("message"), v.Message, "message must be non-empty if specified"))
		} else if strings.ContainsAny(v.Message, "\n") {
			errs = append(errs, field.Invalid(vp.Child("message"), v.Message, "message must not contain line breaks"))
		}
		if v.MessageExpression != "" {
			if strings.TrimSpace(v.MessageExpression) == "" {
				errs = append(errs, field.Required(vp.Child("messageExpression"), "messageExpression must be non-empty if specified"))
			} else {
				errs = append(errs, c.compile(&validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}, noAuthz, vp.Child("messageExpression"))...)
			}
		}
		if v.Reason != nil && !sets.New(supportedReasons...).Has(*v.Reason) {
			errs = append(errs, field.NotSupported(vp.Child("reason"), *v.Reason, supportedReasons))
		}
	}

	keys := sets.New[string]()
	for i, a := range spec.AuditAnnotations {
		ap := p.Child("auditAnnotations").Index(i)
		if a.Key == "" {
			errs = append(errs, field.Required(ap.Child("key"), ""))
		} else {
			// The key is a valid annotation key once prefixed with the
			// policy's name ("<policy>/<key>"); 63 characters at most.
			if msgs := utilvalidation.IsQualifiedName("x/" + a.Key); len(msgs) > 0 {
				errs = append(errs, field.Invalid(ap.Child("key"), a.Key, strings.Join(msgs, "; ")))
			}
			if keys.Has(a.Key) {
				errs = append(errs, field.Duplicate(ap.Child("key"), a.Key))
			}
			keys.Insert(a.Key)
		}
		if strings.TrimSpace(a.ValueExpression) == "" {
			errs = append(errs, field.Required(ap.Child("valueExpression"), "valueExpression is not specified"))
		} else {
			errs = append(errs, c.compile(&validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}, withAuthz, ap.Child("valueExpression"))...)
		}
	}
	return errs
}

// validateVariables checks the variables and compiles them into c, in
// order, so that later expressions see them.
func validateVariables(c *policyCompiler, vars []admissionregistrationv1.Variable, withAuthz plugincel.OptionalVariableDeclarations, vsp *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, v := range vars {
		vp := vsp.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), "name is not specified"))
		case !isCELIdentifier(v.Name):
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, "name is not a valid CEL identifier"))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		names.Insert(v.Name)
		if strings.TrimSpace(v.Expression) == "" {
			errs = append(errs, field.Required(vp.Child("expression"), "expression is not specified"))
			continue
		}
		acc := &validating.Variable{Name: v.Name, Expression: v.Expression}
		r := c.compiler.CompileAndStoreVariable(acc, withAuthz, c.mode(v.Expression))
		if r.Error != nil {
			errs = append(errs, celError(vp.Child("expression"), v.Expression, r.Error))
		}
	}

	return errs
}

func validatePolicyMatchConditions(c *policyCompiler, conds []admissionregistrationv1.MatchCondition, opts plugincel.OptionalVariableDeclarations, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(conds) > maxMatchConditions {
		errs = append(errs, field.TooMany(p, len(conds), maxMatchConditions))
	}
	names := sets.New[string]()
	for i, m := range conds {
		mp := p.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else {
			for _, msg := range utilvalidation.IsQualifiedName(m.Name) {
				errs = append(errs, field.Invalid(mp.Child("name"), m.Name, msg))
			}
			if names.Has(m.Name) {
				errs = append(errs, field.Duplicate(mp.Child("name"), m.Name))
			}
			names.Insert(m.Name)
		}
		if strings.TrimSpace(m.Expression) == "" {
			errs = append(errs, field.Required(mp.Child("expression"), ""))
			continue
		}
		acc := &matchconditions.MatchCondition{Name: m.Name, Expression: m.Expression}
		errs = append(errs, c.compile(acc, opts, mp.Child("expression"))...)
	}
	return errs
}

func validateParamKind(pk *admissionregistrationv1.ParamKind, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if pk.APIVersion == "" {
		errs = append(errs, field.Required(p.Child("apiVersion"), ""))
	} else if gv, err := schema.ParseGroupVersion(pk.APIVersion); err != nil {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), pk.APIVersion, err.Error()))
	} else if gv.Group != "" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(gv.Group) {
			errs = append(errs, field.Invalid(p.Child("apiVersion"), gv.Group, msg))
		}
	}
	if pk.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	} else {
		for _, msg := range utilvalidation.IsDNS1035Label(strings.ToLower(pk.Kind)) {
			errs = append(errs, field.Invalid(p.Child("kind"), pk.Kind, msg))
		}
	}
	return errs
}

func validateMatchResources(m *admissionregistrationv1.MatchResources, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.MatchPolicy == nil {
		errs = append(errs, field.Required(p.Child("matchPolicy"), ""))
	} else if !sets.New(supportedMatchPolicies...).Has(*m.MatchPolicy) {
		errs = append(errs, field.NotSupported(p.Child("matchPolicy"), *m.MatchPolicy, supportedMatchPolicies))
	}
	opts := metav1validation.LabelSelectorValidationOptions{}
	if m.NamespaceSelector == nil {
		errs = append(errs, field.Required(p.Child("namespaceSelector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(m.NamespaceSelector, opts, p.Child("namespaceSelector"))...)
	}
	if m.ObjectSelector == nil {
		errs = append(errs, field.Required(p.Child("objectSelector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(m.ObjectSelector, opts, p.Child("objectSelector"))...)
	}
	for i := range m.ResourceRules {
		errs = append(errs, validateNamedRule(&m.ResourceRules[i], p.Child("resourceRules").Index(i))...)
	}
	for i := range m.ExcludeResourceRules {
		errs = append(errs, validateNamedRule(&m.ExcludeResourceRules[i], p.Child("excludeResourceRules").Index(i))...)
	}
	return errs
}

func validateNamedRule(r *admissionregistrationv1.NamedRuleWithOperations, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, n := range r.ResourceNames {
		for _, msg := range apivalidation.NameIsDNSSubdomain(n, false) {
			errs = append(errs, field.Invalid(p.Child("resourceNames").Index(i), n, msg))
		}
		if names.Has(n) {
			errs = append(errs, field.Duplicate(p.Child("resourceNames").Index(i), n))
		}
		names.Insert(n)
	}
	errs = append(errs, validateOperations(r.Operations, p.Child("operations"))...)
	return append(errs, validatePolicyRule(&r.Rule, p)...)
}

func validateOperations(ops []admissionregistrationv1.OperationType, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(ops) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	if len(ops) > 1 && hasStar(ops) {
		errs = append(errs, field.Invalid(p, ops, "if '*' is present, must not specify other operations"))
	}
	for i, op := range ops {
		if !sets.New(policyOperations...).Has(op) {
			errs = append(errs, field.NotSupported(p.Index(i), op, policyOperations))
		}
	}
	return errs
}

func hasStar[T ~string](s []T) bool {
	for _, v := range s {
		if v == "*" {
			return true
		}
	}
	return false
}

// validatePolicyRule checks a rule as upstream's validateRule (subresources
// allowed).
func validatePolicyRule(r *admissionregistrationv1.Rule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(r.APIGroups) == 0 {
		errs = append(errs, field.Required(p.Child("apiGroups"), ""))
	}
	if len(r.APIGroups) > 1 && hasStar(r.APIGroups) {
		errs = append(errs, field.Invalid(p.Child("apiGroups"), r.APIGroups, "if '*' is present, must not specify other API groups"))
	}
	if len(r.APIVersions) == 0 {
		errs = append(errs, field.Required(p.Child("apiVersions"), ""))
	}
	if len(r.APIVersions) > 1 && hasStar(r.APIVersions) {
		errs = append(errs, field.Invalid(p.Child("apiVersions"), r.APIVersions, "if '*' is present, must not specify other API versions"))
	}
	for i, v := range r.APIVersions {
		if v == "" {
			errs = append(errs, field.Required(p.Child("apiVersions").Index(i), ""))
		}
	}
	if len(r.Resources) == 0 {
		errs = append(errs, field.Required(p.Child("resources"), ""))
	}
	errs = append(errs, validateResources(r.Resources, p.Child("resources"))...)
	if r.Scope != nil && !sets.New(supportedScopes...).Has(*r.Scope) {
		errs = append(errs, field.NotSupported(p.Child("scope"), *r.Scope, supportedScopes))
	}
	return errs
}

// validateResources checks resources as upstream: "*", "*/*",
// "resource", "resource/sub", "*/sub" or "resource/*", with no overlap.
func validateResources(resources []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	withSub := sets.New[string]()     // subresources named with a wildcard resource
	withRes := sets.New[string]()     // resources named with a wildcard subresource
	resToSub := map[string][]string{} // resource -> subresources
	hasDoubleWildcard, hasSingleWildcard := false, false
	for i, r := range resources {
		if r == "" {
			errs = append(errs, field.Required(p.Index(i), ""))
			continue
		}
		switch r {
		case "*/*":
			hasDoubleWildcard = true
		case "*":
			hasSingleWildcard = true
		}
		parts := strings.SplitN(r, "/", 2)
		res, sub := parts[0], ""
		if len(parts) == 2 {
			sub = parts[1]
		}
		if res == "*" && sub != "" && sub != "*" {
			withSub.Insert(sub)
		}
		if sub == "*" && res != "*" {
			withRes.Insert(res)
		}
		resToSub[res] = append(resToSub[res], sub)
	}
	if hasDoubleWildcard && len(resources) > 1 {
		errs = append(errs, field.Invalid(p, resources, "if '*/*' is present, must not specify other resources"))
	}
	if hasSingleWildcard && len(resources) > 1 {
		errs = append(errs, field.Invalid(p, resources, "if '*' is present, must not specify other resources without subresources"))
	}
	for i, r := range resources {
		parts := strings.SplitN(r, "/", 2)
		res := parts[0]
		if len(parts) == 2 {
			if parts[1] != "*" && withSub.Has(parts[1]) && res != "*" {
				errs = append(errs, field.Invalid(p.Index(i), r, fmt.Sprintf("if '*/%s' is present, must not specify %s", parts[1], r)))
			}
			if parts[1] != "*" && withRes.Has(res) {
				errs = append(errs, field.Invalid(p.Index(i), r, fmt.Sprintf("if '%s/*' is present, must not specify %s", res, r)))
			}
		}
	}
	return errs
}

func validateBindingSpec(spec *admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec, p *field.Path) field.ErrorList {
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
	errs = append(errs, validateParamRef(spec.ParamRef, p.Child("paramRef"))...)
	ap := p.Child("validationActions")
	if len(spec.ValidationActions) == 0 {
		errs = append(errs, field.Required(ap, "at least one validation action is required"))
	}
	seen := sets.New[admissionregistrationv1.ValidationAction]()
	for i, a := range spec.ValidationActions {
		if !sets.New(supportedValidationAction...).Has(a) {
			errs = append(errs, field.NotSupported(ap.Index(i), a, supportedValidationAction))
		}
		if seen.Has(a) {
			errs = append(errs, field.Duplicate(ap.Index(i), a))
		}
		seen.Insert(a)
	}
	if seen.Has(admissionregistrationv1.Deny) && seen.Has(admissionregistrationv1.Warn) {
		errs = append(errs, field.Invalid(ap, spec.ValidationActions, "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	return errs
}

func validateParamRef(r *admissionregistrationv1.ParamRef, rp *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if r.Name != "" {
		for _, msg := range apivalidation.NameIsDNSSubdomain(r.Name, false) {
			errs = append(errs, field.Invalid(rp.Child("name"), r.Name, msg))
		}
		if r.Selector != nil {
			errs = append(errs, field.Forbidden(rp.Child("name"), "name and selector are mutually exclusive"))
		}
	}
	if r.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(r.Selector, metav1validation.LabelSelectorValidationOptions{}, rp.Child("selector"))...)
	}
	if r.Name == "" && r.Selector == nil {
		errs = append(errs, field.Required(rp, "one of name or selector must be specified"))
	}
	if r.Namespace != "" {
		for _, msg := range apivalidation.ValidateNamespaceName(r.Namespace, false) {
			errs = append(errs, field.Invalid(rp.Child("namespace"), r.Namespace, msg))
		}
	}
	if r.ParameterNotFoundAction == nil {
		errs = append(errs, field.Required(rp.Child("parameterNotFoundAction"), ""))
	} else if !sets.New(supportedNotFoundActions...).Has(*r.ParameterNotFoundAction) {
		errs = append(errs, field.NotSupported(rp.Child("parameterNotFoundAction"), *r.ParameterNotFoundAction, supportedNotFoundActions))
	}
	return errs
}

// isCELIdentifier reports whether s is a CEL identifier and no reserved
// word, as variable names must be.
func isCELIdentifier(s string) bool {
	if s == "" || celReserved.Has(s) {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

var celReserved = sets.New("true", "false", "null", "in", "as", "break", "const", "continue", "else",
	"for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while")

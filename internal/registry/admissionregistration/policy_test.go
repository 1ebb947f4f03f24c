package admissionregistration

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func validPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}},
			},
			Variables:   []admissionregistrationv1.Variable{{Name: "replicas", Expression: "object.spec.replicas"}},
			Validations: []admissionregistrationv1.Validation{{Expression: "variables.replicas > 1", MessageExpression: "'replicas: ' + string(variables.replicas)"}},
		},
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := validPolicy()
	ValidatingAdmissionPolicyStrategy{}.Default(p)
	mc := p.Spec.MatchConstraints
	if *p.Spec.FailurePolicy != admissionregistrationv1.Fail || *mc.MatchPolicy != admissionregistrationv1.Equivalent ||
		mc.NamespaceSelector == nil || mc.ObjectSelector == nil || *mc.ResourceRules[0].Scope != admissionregistrationv1.AllScopes {
		t.Errorf("defaults: %+v %+v", p.Spec, mc)
	}
	if errs := (ValidatingAdmissionPolicyStrategy{}).Validate(context.Background(), p); len(errs) > 0 {
		t.Errorf("valid policy: %v", errs)
	}
}

func TestPolicyValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*admissionregistrationv1.ValidatingAdmissionPolicy)
		want   string // field and type, e.g. "spec.validations[0].expression: Invalid value"
	}{
		{"compile error", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].Expression = "object.spec.replicas >"
		}, "spec.validations[0].expression: Invalid value"},
		{"not a bool", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].Expression = "'x'"
		}, "spec.validations[0].expression: Invalid value"},
		{"unknown variable", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].Expression = "variables.nope > 1"
		}, "spec.validations[0].expression: Invalid value"},
		{"params without paramKind", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].Expression = "params.x == 1"
		}, "spec.validations[0].expression: Invalid value"},
		{"message expression not a string", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].MessageExpression = "1"
		}, "spec.validations[0].messageExpression: Invalid value"},
		{"no validations", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations = nil
		}, "spec.validations: Required value"},
		{"no match constraints", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.MatchConstraints = nil
		}, "spec.matchConstraints: Required value"},
		{"no resource rules", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.MatchConstraints.ResourceRules = nil
		}, "spec.matchConstraints.resourceRules: Required value"},
		{"bad failure policy", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.FailurePolicy = ptr.To(admissionregistrationv1.FailurePolicyType("Maybe"))
		}, "spec.failurePolicy: Unsupported value"},
		{"bad reason", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Validations[0].Reason = ptr.To(metav1.StatusReason("Nope"))
		}, "spec.validations[0].reason: Unsupported value"},
		{"bad variable name", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.Variables[0].Name = "1x"
		}, "spec.variables[0].name: Invalid value"},
		{"match condition compile error", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "m", Expression: "object."}}
		}, "spec.matchConditions[0].expression: Invalid value"},
		{"paramKind without kind", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1"}
		}, "spec.paramKind.kind: Required value"},
		{"operations wildcard and more", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{"*", "CREATE"}
		}, "spec.matchConstraints.resourceRules[0].operations: Invalid value"},
		{"audit annotation", func(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
			p.Spec.AuditAnnotations = []admissionregistrationv1.AuditAnnotation{{Key: "k", ValueExpression: "1"}}
		}, "spec.auditAnnotations[0].valueExpression: Invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPolicy()
			tt.mutate(p)
			s := ValidatingAdmissionPolicyStrategy{}
			s.Default(p)
			errs := s.Validate(context.Background(), p)
			if !hasError(errs, tt.want) {
				t.Errorf("got %v, want %q", errs, tt.want)
			}
		})
	}
}

func TestPolicyParamsCompile(t *testing.T) {
	p := validPolicy()
	p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
	p.Spec.Validations[0].Expression = "object.spec.replicas <= int(params.data.max)"
	s := ValidatingAdmissionPolicyStrategy{}
	s.Default(p)
	if errs := s.Validate(context.Background(), p); len(errs) > 0 {
		t.Errorf("%v", errs)
	}
}

func TestBindingValidation(t *testing.T) {
	valid := func() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "b"},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        "p",
				ParamRef:          &admissionregistrationv1.ParamRef{Name: "cm", Namespace: "default"},
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			},
		}
	}
	s := ValidatingAdmissionPolicyBindingStrategy{}
	b := valid()
	s.Default(b)
	if *b.Spec.ParamRef.ParameterNotFoundAction != admissionregistrationv1.DenyAction {
		t.Errorf("parameterNotFoundAction defaulted to %v", *b.Spec.ParamRef.ParameterNotFoundAction)
	}
	if errs := s.Validate(context.Background(), b); len(errs) > 0 {
		t.Errorf("valid binding: %v", errs)
	}
	tests := []struct {
		name   string
		mutate func(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		want   string
	}{
		{"no policy", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.PolicyName = "" }, "spec.policyName: Required value"},
		{"no actions", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.ValidationActions = nil }, "spec.validationActions: Required value"},
		{"deny and warn", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Deny", "Warn"}
		}, "spec.validationActions: Invalid value"},
		{"unknown action", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Shout"}
		}, "spec.validationActions[0]: Unsupported value"},
		{"duplicate action", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{"Audit", "Audit"}
		}, "spec.validationActions[1]: Duplicate value"},
		{"paramRef without name or selector", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) { b.Spec.ParamRef.Name = "" }, "spec.paramRef: Required value"},
		{"paramRef name and selector", func(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
			b.Spec.ParamRef.Selector = &metav1.LabelSelector{}
		}, "spec.paramRef.name: Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid()
			tt.mutate(b)
			s.Default(b)
			if errs := s.Validate(context.Background(), b); !hasError(errs, tt.want) {
				t.Errorf("got %v, want %q", errs, tt.want)
			}
		})
	}
}

func hasError(errs field.ErrorList, want string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Error(), want) {
			return true
		}
	}
	return false
}

func TestMutatingPolicyValidation(t *testing.T) {
	valid := func() *admissionregistrationv1.MutatingAdmissionPolicy {
		p := &admissionregistrationv1.MutatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "m"},
			Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
				MatchConstraints: validPolicy().Spec.MatchConstraints,
				Mutations: []admissionregistrationv1.Mutation{
					{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration, ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
						Expression: `Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}`}},
					{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{
						Expression: `[JSONPatch{op: "add", path: "/spec/replicas", value: 3}]`}},
				},
			},
		}
		MutatingAdmissionPolicyStrategy{}.Default(p)
		return p
	}
	p := valid()
	if p.Spec.ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("defaults: %+v", p.Spec)
	}
	if errs := (MutatingAdmissionPolicyStrategy{}).Validate(context.Background(), p); len(errs) > 0 {
		t.Fatalf("valid policy: %v", errs)
	}
	tests := []struct {
		name   string
		mutate func(*admissionregistrationv1.MutatingAdmissionPolicy)
		want   string
	}{
		{"no mutations", func(p *admissionregistrationv1.MutatingAdmissionPolicy) { p.Spec.Mutations = nil }, "spec.mutations: Required value"},
		{"apply configuration not an Object", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations[0].ApplyConfiguration.Expression = "1"
		}, "spec.mutations[0].applyConfiguration.expression: Invalid value"},
		{"json patch not a list", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations[1].JSONPatch.Expression = `JSONPatch{op: "remove", path: "/x"}`
		}, "spec.mutations[1].jsonPatch.expression: Invalid value"},
		{"unknown patch type", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.Mutations[0].PatchType = "Merge"
		}, "spec.mutations[0].patchType: Unsupported value"},
		{"reinvocation", func(p *admissionregistrationv1.MutatingAdmissionPolicy) {
			p.Spec.ReinvocationPolicy = "Always"
		}, "spec.reinvocationPolicy: Unsupported value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.mutate(p)
			if errs := (MutatingAdmissionPolicyStrategy{}).Validate(context.Background(), p); !hasError(errs, tt.want) {
				t.Errorf("got %v, want %q", errs, tt.want)
			}
		})
	}
}

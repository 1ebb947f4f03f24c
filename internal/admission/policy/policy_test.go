package policy

import (
	"context"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	genericinit "k8s.io/apiserver/pkg/admission/initializer"
	"k8s.io/apiserver/pkg/authentication/user"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/warning"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/registry/admissionregistration"
)

type recorder struct {
	mu       sync.Mutex
	warnings []string
}

func (r *recorder) AddWarning(_, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.warnings = append(r.warnings, text)
}

// replicasPolicy denies deployments with fewer replicas than its param's
// data.min (a ConfigMap), with a message expression.
func replicasPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "not-exempt", Expression: "!has(object.metadata.labels) || !('exempt' in object.metadata.labels)"}},
			Variables:       []admissionregistrationv1.Variable{{Name: "min", Expression: "int(params.data.min)"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "object.spec.replicas >= variables.min",
				MessageExpression: "'replicas must be at least ' + string(variables.min)",
				Reason:            ptr.To(metav1.StatusReasonInvalid),
			}},
		},
	}
	admissionregistration.ValidatingAdmissionPolicyStrategy{}.Default(p)
	return p
}

func binding(name string, actions []admissionregistrationv1.ValidationAction, nsLabels map[string]string) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        "replicas",
			ParamRef:          &admissionregistrationv1.ParamRef{Name: "limits", Namespace: "params"},
			ValidationActions: actions,
			MatchResources:    &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{MatchLabels: nsLabels}},
		},
	}
	admissionregistration.ValidatingAdmissionPolicyBindingStrategy{}.Default(b)
	return b
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func startPlugin(t *testing.T, objs ...runtime.Object) *Plugin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := fake.NewClientset(objs...)
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme)
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	genericinit.New(client, dyn, factory, Authorizer(auth.AuthenticatedAllower{}), utilfeature.DefaultFeatureGate,
		utilcompatibility.DefaultBuildEffectiveVersion(), ctx.Done(), mapper).Initialize(p)
	if err := p.(admission.InitializationValidator).ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	return p.(*Plugin)
}

func deployment(ns string, replicas int32, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: labels},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
}

func validate(t *testing.T, p *Plugin, d *appsv1.Deployment) ([]string, error) {
	t.Helper()
	rec := &recorder{}
	ctx := warning.WithWarningRecorder(context.Background(), rec)
	attrs := admission.NewAttributesRecord(d, nil, appsv1.SchemeGroupVersion.WithKind("Deployment"), d.Namespace, d.Name,
		appsv1.SchemeGroupVersion.WithResource("deployments"), "", admission.Create, &metav1.CreateOptions{}, false,
		&user.DefaultInfo{Name: "alice", Groups: []string{user.AllAuthenticated}})
	err := p.Validate(ctx, attrs, admission.NewObjectInterfacesFromScheme(scheme.Scheme))
	return rec.warnings, err
}

func TestValidatingAdmissionPolicy(t *testing.T) {
	params := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "params"}, Data: map[string]string{"min": "2"}}
	p := startPlugin(t, replicasPolicy(), params,
		binding("deny", []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, map[string]string{"policy": "deny"}),
		binding("warn", []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}, map[string]string{"policy": "warn"}),
		namespace("strict", map[string]string{"policy": "deny"}),
		namespace("lenient", map[string]string{"policy": "warn"}),
		namespace("free", nil),
		namespace("params", nil),
	)
	tests := []struct {
		name        string
		d           *appsv1.Deployment
		wantErr     string
		wantWarning string
	}{
		{"denied with the message expression", deployment("strict", 1, nil),
			`deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'replicas' with binding 'deny' denied request: replicas must be at least 2`, ""},
		{"allowed", deployment("strict", 2, nil), "", ""},
		{"match condition exempts", deployment("strict", 1, map[string]string{"exempt": "yes"}), "", ""},
		{"warned", deployment("lenient", 1, nil), "",
			"Validation failed for ValidatingAdmissionPolicy 'replicas' with binding 'warn': replicas must be at least 2"},
		{"namespace not selected", deployment("free", 0, nil), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := validate(t, p, tt.d)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				if !apierrors.IsInvalid(err) {
					t.Errorf("reason %v, want Invalid", apierrors.ReasonForError(err))
				}
			}
			got := strings.Join(warnings, "\n")
			if got != tt.wantWarning {
				t.Errorf("warnings %q, want %q", got, tt.wantWarning)
			}
		})
	}
}

func TestParamNotFound(t *testing.T) {
	deny := binding("deny", []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, nil)
	allow := binding("allow", []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, nil)
	allow.Spec.ParamRef.ParameterNotFoundAction = ptr.To(admissionregistrationv1.AllowAction)
	allow.Spec.MatchResources.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"missing": "allow"}}
	deny.Spec.MatchResources.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"missing": "deny"}}
	p := startPlugin(t, replicasPolicy(), deny, allow,
		namespace("a", map[string]string{"missing": "allow"}), namespace("d", map[string]string{"missing": "deny"}))
	if _, err := validate(t, p, deployment("a", 1, nil)); err != nil {
		t.Errorf("parameterNotFoundAction Allow: %v", err)
	}
	_, err := validate(t, p, deployment("d", 1, nil))
	if err == nil || !strings.Contains(err.Error(), "no params found for policy binding with `Deny` parameterNotFoundAction") {
		t.Errorf("parameterNotFoundAction Deny: %v", err)
	}
}

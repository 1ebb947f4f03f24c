package admission_test

// ValidatingAdmissionPolicy end to end: policies and bindings written with
// client-go and kubectl, requests denied with the policy's message, params
// from a ConfigMap, Warn, namespace selectors and the type-checking status.
// Named after upstream's [sig-api-machinery] ValidatingAdmissionPolicy
// [Privileged:ClusterAdmin] conformance specs where they check the same
// behaviour. These need no pods: the server runs without its agent.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/havre/havre/test/framework"
)

func startPolicyServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t, framework.WithoutWorkloadControllers())
}

// policyNamespace creates a namespace with labels for one test.
func policyNamespace(t *testing.T, cs kubernetes.Interface, prefix string, labels map[string]string) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(framework.RequestContext(t), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

func deploymentWithReplicas(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

func deploymentRules() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
			},
		}},
	}
}

func createPolicy(t *testing.T, cs kubernetes.Interface, p *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	vap := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	if _, err := vap.Create(framework.RequestContext(t), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the policy: %v", err)
	}
	t.Cleanup(func() { _ = vap.Delete(context.Background(), p.Name, metav1.DeleteOptions{}) })
	bindings := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	if _, err := bindings.Create(framework.RequestContext(t), b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the binding: %v", err)
	}
	t.Cleanup(func() { _ = bindings.Delete(context.Background(), b.Name, metav1.DeleteOptions{}) })
}

// untilDenied dry-runs the creation of d in ns until it is denied (a
// policy is enforced once the server's informers have seen it and its
// binding) and returns the error.
func untilDenied(t *testing.T, cs kubernetes.Interface, ns string, d *appsv1.Deployment) error {
	t.Helper()
	var denied error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		denied = err
		return err != nil, nil
	})
	if err != nil {
		t.Fatalf("a deployment of %d replicas in %s was never denied", *d.Spec.Replicas, ns)
	}
	return denied
}

// TestValidatingAdmissionPolicyValidateAgainstDeployment is
// "[sig-api-machinery] ValidatingAdmissionPolicy [Privileged:ClusterAdmin]
// should validate against a Deployment [Conformance]", with the binding's
// namespaceSelector, kubectl's view of the denial and "should allow
// expressions to refer variables".
func TestValidatingAdmissionPolicyValidateAgainstDeployment(t *testing.T) {
	s := startPolicyServer(t)
	cs := s.Clientset()
	selected := policyNamespace(t, cs, "vap-selected", map[string]string{"vap-e2e": "enforced"})
	other := policyNamespace(t, cs, "vap-other", nil)

	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: deploymentRules(),
			Variables: []admissionregistrationv1.Variable{
				{Name: "replicas", Expression: "object.spec.replicas"},
				{Name: "oddReplicas", Expression: "variables.replicas % 2 == 1"},
			},
			Validations: []admissionregistrationv1.Validation{
				{Expression: "variables.replicas > 1", MessageExpression: "'wants replicas > 1, got ' + string(variables.replicas)"},
				{Expression: "variables.oddReplicas", Message: "must have an odd number of replicas", Reason: ptr.To(metav1.StatusReasonForbidden)},
			},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replicas-binding.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"vap-e2e": "enforced"}},
			},
		},
	}
	createPolicy(t, cs, policy, binding)

	err := untilDenied(t, cs, selected, deploymentWithReplicas("one", 1))
	want := `ValidatingAdmissionPolicy 'replicas.e2e.havre.io' with binding 'replicas-binding.e2e.havre.io' denied request: wants replicas > 1, got 1`
	if !strings.Contains(err.Error(), want) || !apierrors.IsInvalid(err) {
		t.Errorf("denied with %v (reason %s), want %q and reason Invalid", err, apierrors.ReasonForError(err), want)
	}

	// The second validation, with its message and reason.
	_, err = cs.AppsV1().Deployments(selected).Create(framework.RequestContext(t), deploymentWithReplicas("two", 2), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "denied request: must have an odd number of replicas") || !apierrors.IsForbidden(err) {
		t.Errorf("2 replicas: %v (reason %s), want the odd-replicas message, Forbidden", err, apierrors.ReasonForError(err))
	}

	// Allowed in the selected namespace; anything goes in the other one.
	if _, err := cs.AppsV1().Deployments(selected).Create(framework.RequestContext(t), deploymentWithReplicas("three", 3), metav1.CreateOptions{}); err != nil {
		t.Errorf("3 replicas: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(other).Create(framework.RequestContext(t), deploymentWithReplicas("one", 1), metav1.CreateOptions{}); err != nil {
		t.Errorf("a namespace the binding does not select: %v", err)
	}

	// An update is checked too.
	patch := []byte(`{"spec":{"replicas":1}}`)
	_, err = cs.AppsV1().Deployments(selected).Patch(framework.RequestContext(t), "three", types.MergePatchType, patch, metav1.PatchOptions{})
	if err == nil || !strings.Contains(err.Error(), "wants replicas > 1, got 1") {
		t.Errorf("scaling down to 1 by a patch: %v", err)
	}

	// kubectl prints the denial.
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: kubectl-one
spec:
  replicas: 1
  selector: {matchLabels: {app: k}}
  template:
    metadata: {labels: {app: k}}
    spec: {containers: [{name: c, image: registry.k8s.io/pause:3.10}]}
`
	_, stderr, err := s.KubectlStdin(manifest, "create", "-n", selected, "-f", "-")
	wantKubectl := `The deployments "kubectl-one" is invalid: : ` + want
	if err == nil || !strings.Contains(stderr, wantKubectl) {
		t.Errorf("kubectl create: %v\n%s\nwant %q", err, stderr, wantKubectl)
	}
}

// TestValidatingAdmissionPolicyParams: a policy's limit from a ConfigMap
// named by the binding's paramRef, followed when the ConfigMap changes;
// without the ConfigMap, parameterNotFoundAction Deny denies.
func TestValidatingAdmissionPolicyParams(t *testing.T) {
	s := startPolicyServer(t)
	cs := s.Clientset()
	ns := policyNamespace(t, cs, "vap-params", nil)
	params := policyNamespace(t, cs, "vap-params-cm", nil)
	cm, err := cs.CoreV1().ConfigMaps(params).Create(framework.RequestContext(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit"}, Data: map[string]string{"maxReplicas": "3"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:        &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: deploymentRules(),
			Variables:        []admissionregistrationv1.Variable{{Name: "max", Expression: "int(params.data.maxReplicas)"}},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "object.spec.replicas <= variables.max",
				MessageExpression: "'at most ' + string(variables.max) + ' replicas'",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "replica-limit-binding.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ParamRef:          &admissionregistrationv1.ParamRef{Name: "replica-limit", Namespace: params},
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			},
		},
	}
	createPolicy(t, cs, policy, binding)

	if err := untilDenied(t, cs, ns, deploymentWithReplicas("four", 4)); !strings.Contains(err.Error(), "denied request: at most 3 replicas") {
		t.Errorf("4 replicas: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(framework.RequestContext(t), deploymentWithReplicas("three", 3), metav1.CreateOptions{}); err != nil {
		t.Errorf("3 replicas: %v", err)
	}

	cm.Data["maxReplicas"] = "1"
	if _, err := cs.CoreV1().ConfigMaps(params).Update(framework.RequestContext(t), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := untilDenied(t, cs, ns, deploymentWithReplicas("two", 2)); !strings.Contains(err.Error(), "denied request: at most 1 replicas") {
		t.Errorf("2 replicas under the new limit: %v", err)
	}

	if err := cs.CoreV1().ConfigMaps(params).Delete(framework.RequestContext(t), cm.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var last error
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = cs.AppsV1().Deployments(ns).Create(ctx, deploymentWithReplicas("zero", 0), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), "no params found for policy binding with `Deny` parameterNotFoundAction"), nil
	})
	if err != nil {
		t.Errorf("without the ConfigMap: %v", last)
	}
}

// TestValidatingAdmissionPolicyWarn: a binding with validationActions
// [Warn] admits the request and returns the failure as a Warning header,
// which kubectl prints.
func TestValidatingAdmissionPolicyWarn(t *testing.T) {
	s := startPolicyServer(t)
	cs := s.Clientset()
	ns := policyNamespace(t, cs, "vap-warn", map[string]string{"vap-e2e": "warned"})
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-owner.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels",
				Message:    "every ConfigMap needs an owner label",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-owner-binding.e2e.havre.io"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn},
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"vap-e2e": "warned"}},
			},
		},
	}
	createPolicy(t, cs, policy, binding)

	want := "Warning: Validation failed for ValidatingAdmissionPolicy 'configmap-owner.e2e.havre.io' with binding 'configmap-owner-binding.e2e.havre.io': every ConfigMap needs an owner label"
	var stderr string
	i := 0
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		i++
		var err error
		_, stderr, err = s.Kubectl("create", "configmap", "-n", ns, fmt.Sprintf("unowned-%d", i), "--from-literal=k=v")
		if err != nil {
			return false, err
		}
		return strings.Contains(stderr, want), nil
	})
	if err != nil {
		t.Fatalf("kubectl create configmap: %v; stderr %q, want %q", err, stderr, want)
	}
}

// TestValidatingAdmissionPolicyAPIOperations is "[sig-api-machinery]
// ValidatingAdmissionPolicy [Privileged:ClusterAdmin] should support
// ValidatingAdmissionPolicy API operations [Conformance]" and "... should
// support ValidatingAdmissionPolicyBinding API operations [Conformance]",
// with the type-checking status written by the status controller and a
// compile error refused at create.
func TestValidatingAdmissionPolicyAPIOperations(t *testing.T) {
	s := startPolicyServer(t)
	cs := s.Clientset()
	vap := cs.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "api-ops.e2e.havre.io", Labels: map[string]string{"e2e": "vap-api"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: deploymentRules(),
			Validations:      []admissionregistrationv1.Validation{{Expression: "object.spec.replicaz > 1"}},
		},
	}
	created, err := vap.Create(framework.RequestContext(t), policy, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vap.Delete(context.Background(), policy.Name, metav1.DeleteOptions{}) })
	if *created.Spec.FailurePolicy != admissionregistrationv1.Fail || *created.Spec.MatchConstraints.MatchPolicy != admissionregistrationv1.Equivalent || created.Generation != 1 {
		t.Errorf("defaults: failurePolicy %v, matchPolicy %v, generation %d", *created.Spec.FailurePolicy, *created.Spec.MatchConstraints.MatchPolicy, created.Generation)
	}

	// The status controller type-checks the expression against the
	// Deployment schema: replicaz is no field.
	var got *admissionregistrationv1.ValidatingAdmissionPolicy
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = vap.Get(ctx, policy.Name, metav1.GetOptions{})
		return err == nil && got.Status.TypeChecking != nil && got.Status.ObservedGeneration == got.Generation, nil
	})
	if err != nil {
		t.Fatalf("status.typeChecking never written: %+v", got.Status)
	}
	if w := got.Status.TypeChecking.ExpressionWarnings; len(w) != 1 || w[0].FieldRef != "spec.validations[0].expression" || !strings.Contains(w[0].Warning, "undefined field 'replicaz'") {
		t.Errorf("type-checking warnings: %+v", w)
	}

	list, err := vap.List(framework.RequestContext(t), metav1.ListOptions{LabelSelector: "e2e=vap-api"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	patched, err := vap.Patch(framework.RequestContext(t), policy.Name, types.MergePatchType,
		[]byte(`{"spec":{"validations":[{"expression":"object.spec.replicas > 1"}]}}`), metav1.PatchOptions{})
	if err != nil || patched.Generation != 2 {
		t.Fatalf("patch: %v (generation %d)", err, patched.Generation)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err = vap.Get(ctx, policy.Name, metav1.GetOptions{})
		return err == nil && got.Status.ObservedGeneration == 2 && got.Status.TypeChecking != nil && len(got.Status.TypeChecking.ExpressionWarnings) == 0, nil
	})
	if err != nil {
		t.Errorf("status after the fix: %+v", got.Status)
	}

	// A compile error is refused on its field.
	bad := policy.DeepCopy()
	bad.Name, bad.ResourceVersion = "bad.e2e.havre.io", ""
	bad.Spec.Validations = []admissionregistrationv1.Validation{{Expression: "object.spec.replicas >"}}
	_, err = vap.Create(framework.RequestContext(t), bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.validations[0].expression: Invalid value: \"object.spec.replicas >\": compilation failed") {
		t.Errorf("a policy that does not compile: %v", err)
	}

	// Bindings: create, get, list, update, delete.
	bindings := cs.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	b, err := bindings.Create(framework.RequestContext(t), &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "api-ops-binding.e2e.havre.io", Labels: map[string]string{"e2e": "vap-api"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn}
	if _, err := bindings.Update(framework.RequestContext(t), b, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("Deny and Warn together: %v", err)
	}
	out := s.MustKubectl(t, "get", "validatingadmissionpolicybindings", "-l", "e2e=vap-api")
	if !strings.Contains(out, "POLICYNAME") || !strings.Contains(out, "api-ops.e2e.havre.io") {
		t.Errorf("kubectl get:\n%s", out)
	}
	if err := bindings.DeleteCollection(framework.RequestContext(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "e2e=vap-api"}); err != nil {
		t.Fatal(err)
	}
	if err := vap.DeleteCollection(framework.RequestContext(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "e2e=vap-api"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vap.Get(framework.RequestContext(t), policy.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after deletecollection: %v", err)
	}
}

// TestMutatingAdmissionPolicyMutateDeployment is "[sig-api-machinery]
// MutatingAdmissionPolicy [Privileged:ClusterAdmin] should mutate a
// Deployment [Conformance]": an ApplyConfiguration and a JSONPatch
// mutation of deployments created in the namespace the binding selects.
func TestMutatingAdmissionPolicyMutateDeployment(t *testing.T) {
	s := startPolicyServer(t)
	cs := s.Clientset()
	ns := policyNamespace(t, cs, "map", map[string]string{"map-e2e": "mutated"})
	maps := cs.AdmissionregistrationV1().MutatingAdmissionPolicies()
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "mutate.e2e.havre.io"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: deploymentRules(),
			Mutations: []admissionregistrationv1.Mutation{
				{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration, ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{
					Expression: `Object{metadata: Object.metadata{labels: {"mutated": "yes"}}}`}},
				{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{
					Expression: `[JSONPatch{op: "replace", path: "/spec/replicas", value: 3}]`}},
			},
		},
	}
	if _, err := maps.Create(framework.RequestContext(t), policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = maps.Delete(context.Background(), policy.Name, metav1.DeleteOptions{}) })
	bindings := cs.AdmissionregistrationV1().MutatingAdmissionPolicyBindings()
	if _, err := bindings.Create(framework.RequestContext(t), &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "mutate-binding.e2e.havre.io"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: policy.Name,
			MatchResources: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"map-e2e": "mutated"}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bindings.Delete(context.Background(), "mutate-binding.e2e.havre.io", metav1.DeleteOptions{})
	})

	var got *appsv1.Deployment
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = cs.AppsV1().Deployments(ns).Create(ctx, deploymentWithReplicas("web", 1), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && got.Labels["mutated"] == "yes", nil
	})
	if err != nil {
		t.Fatalf("never mutated: %+v", got)
	}
	if *got.Spec.Replicas != 3 || got.Labels["app"] != "web" {
		t.Errorf("mutated deployment: replicas %d, labels %v", *got.Spec.Replicas, got.Labels)
	}
	other := policyNamespace(t, cs, "map-other", nil)
	d, err := cs.AppsV1().Deployments(other).Create(framework.RequestContext(t), deploymentWithReplicas("web", 1), metav1.CreateOptions{})
	if err != nil || d.Labels["mutated"] != "" || *d.Spec.Replicas != 1 {
		t.Errorf("a namespace the binding does not select: %v %v", err, d)
	}
	out := s.MustKubectl(t, "get", "mutatingadmissionpolicies")
	if !strings.Contains(out, "MUTATIONS") || !strings.Contains(out, "mutate.e2e.havre.io") {
		t.Errorf("kubectl get:\n%s", out)
	}
}

// Package crd_test checks CustomResourceDefinitions end to end against the
// havre binary: the definition's status, its custom resources through
// kubectl, client-go's dynamic client and informers, discovery and OpenAPI.
// Tests are named after upstream's [sig-api-machinery]
// CustomResourceDefinition conformance tests where they check the same
// behaviour.
package crd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	return framework.StartServer(t, framework.WithoutWorkloadControllers())
}

var ctx = framework.RequestContext

// widgetsCRD is a namespaced definition with status and scale
// subresources, printer columns, a CEL rule, a default and a selectable
// field.
const widgetsCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Size
      type: string
      jsonPath: .spec.size
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    selectableFields:
    - jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.replicas <= 10"
              message: "at most 10 replicas"
            properties:
              size:
                type: string
                enum: [small, large]
              replicas:
                type: integer
                minimum: 0
                default: 1
              tags:
                type: array
                x-kubernetes-list-type: set
                items:
                  type: string
          status:
            type: object
            properties:
              replicas:
                type: integer
              phase:
                type: string
`

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// mustEstablish creates a definition with kubectl and waits until it is
// Established.
func mustEstablish(t *testing.T, s *framework.Server, manifest, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	s.MustKubectlStdin(t, manifest, "apply", "-f", "-")
	return waitEstablished(t, s, name)
}

func waitEstablished(t *testing.T, s *framework.Server, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	var crd *apiextensionsv1.CustomResourceDefinition
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		var err error
		crd, err = client.ApiextensionsV1().CustomResourceDefinitions().Get(c, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return condition(crd, apiextensionsv1.Established) == apiextensionsv1.ConditionTrue, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s to be Established: %v (last: %+v)", name, err, crd)
	}
	return crd
}

func condition(crd *apiextensionsv1.CustomResourceDefinition, typ apiextensionsv1.CustomResourceDefinitionConditionType) apiextensionsv1.ConditionStatus {
	for _, c := range crd.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// kubectlUntil retries a kubectl command until it succeeds: discovery
// caches of kubectl are per invocation, the server's are updated at once,
// but the definition's Established condition may be written just before.
func kubectlUntil(t *testing.T, s *framework.Server, stdin string, args ...string) string {
	t.Helper()
	var out, errOut string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
		var err error
		out, errOut, err = s.KubectlStdin(stdin, args...)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("kubectl %s: %s%s", strings.Join(args, " "), out, errOut)
	}
	return out
}

// TestCustomResourceDefinitionStatus: a definition gets accepted names,
// stored versions and NamesAccepted/Established; a second one with a
// conflicting plural is NamesAccepted=False with upstream's reason.
func TestCustomResourceDefinitionStatus(t *testing.T) {
	s := startServer(t)
	crd := mustEstablish(t, s, widgetsCRD, "widgets.example.com")
	if got := crd.Status.AcceptedNames; got.Plural != "widgets" || got.Kind != "Widget" || got.ListKind != "WidgetList" || got.Singular != "widget" {
		t.Errorf("acceptedNames = %+v", got)
	}
	if got := crd.Status.StoredVersions; len(got) != 1 || got[0] != "v1" {
		t.Errorf("storedVersions = %v, want [v1]", got)
	}
	if condition(crd, apiextensionsv1.NamesAccepted) != apiextensionsv1.ConditionTrue {
		t.Errorf("NamesAccepted not True: %+v", crd.Status.Conditions)
	}

	// Same kind in the same group under another plural: the kind and list
	// kind conflict; as upstream, the last conflict found is reported.
	conflicting := strings.NewReplacer("widgets.example.com", "gizmos.example.com", "plural: widgets", "plural: gizmos",
		"singular: widget", "singular: gizmo", "shortNames: [wd]", "shortNames: [gz]").Replace(widgetsCRD)
	s.MustKubectlStdin(t, conflicting, "apply", "-f", "-")
	client := apiextensionsclient.NewForConfigOrDie(s.RESTConfig())
	var got *apiextensionsv1.CustomResourceDefinition
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(c context.Context) (bool, error) {
		var err error
		got, err = client.ApiextensionsV1().CustomResourceDefinitions().Get(c, "gizmos.example.com", metav1.GetOptions{})
		return err == nil && condition(got, apiextensionsv1.NamesAccepted) == apiextensionsv1.ConditionFalse, err
	})
	if err != nil {
		t.Fatalf("waiting for NamesAccepted=False: %v (%+v)", err, got.Status)
	}
	for _, c := range got.Status.Conditions {
		if c.Type == apiextensionsv1.NamesAccepted && (c.Reason != "ListKindConflict" || c.Message != `"WidgetList" is already in use`) {
			t.Errorf("NamesAccepted = %+v, want reason ListKindConflict, message \"WidgetList\" is already in use", c)
		}
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			t.Errorf("conflicting definition is Established")
		}
	}
}

// TestCustomResourceDefinitionInvalid: an invalid definition is refused
// with upstream's field paths.
func TestCustomResourceDefinitionInvalid(t *testing.T) {
	s := startServer(t)
	bad := strings.Replace(widgetsCRD, "name: widgets.example.com", "name: wrong.example.com", 1)
	bad = strings.Replace(bad, "scope: Namespaced", "scope: Galaxy", 1)
	_, stderr, err := s.KubectlStdin(bad, "apply", "-f", "-")
	if err == nil {
		t.Fatal("invalid definition accepted")
	}
	for _, want := range []string{`metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group`, `spec.scope: Unsupported value: "Galaxy"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, stderr)
		}
	}
}

// TestCustomResourcePublishOpenAPI mirrors "[sig-api-machinery]
// CustomResourcePublishOpenAPI [Privileged:ClusterAdmin] works for CRD
// with validation schema": the kind is usable by kubectl (apply with
// client-side validation, get with printer columns, explain) as soon as the
// definition is Established; a bad field is refused with its path; the
// status and scale subresources work (kubectl scale).
func TestCustomResourcePublishOpenAPI(t *testing.T) {
	s := startServer(t)
	mustEstablish(t, s, widgetsCRD, "widgets.example.com")
	ns := framework.NewNamespace(t, s.Clientset(), "crd")

	w := `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  labels: {team: a}
spec:
  size: small
  tags: [blue, green]
`
	kubectlUntil(t, s, w, "apply", "-n", ns, "--validate=strict", "-f", "-")
	out := s.MustKubectl(t, "get", "widgets", "-n", ns)
	if !strings.Contains(out, "SIZE") || !strings.Contains(out, "REPLICAS") || !regexpFields(out, "w1", "small", "1") {
		t.Errorf("kubectl get widgets:\n%s", out)
	}
	if out := s.MustKubectl(t, "get", "wd", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "widget.example.com/w1" {
		t.Errorf("short name: %q", out)
	}
	if out := s.MustKubectl(t, "explain", "widgets.spec.size"); !strings.Contains(out, "size") {
		t.Errorf("kubectl explain:\n%s", out)
	}

	// Client-side strict validation (OpenAPI v3) refuses an unknown field.
	_, stderr, err := s.KubectlStdin(strings.Replace(w, "size: small", "size: small\n  colour: red", 1), "apply", "-n", ns, "--validate=strict", "-f", "-")
	if err == nil || !strings.Contains(stderr, "colour") {
		t.Errorf("kubectl --validate=strict accepted an unknown field: %v %s", err, stderr)
	}
	// Server-side: schema (enum), CEL and list-type errors name their paths.
	dyn := s.Dynamic().Resource(widgets).Namespace(ns)
	bad := widget("w2", map[string]any{"size": "huge", "replicas": int64(11), "tags": []any{"a", "a"}})
	_, err = dyn.Create(ctx(t), bad, metav1.CreateOptions{})
	st := statusOf(t, err)
	if st.Code != 422 || st.Reason != metav1.StatusReasonInvalid {
		t.Fatalf("got %d %s, want 422 Invalid", st.Code, st.Reason)
	}
	fieldsSeen := map[string]bool{}
	for _, c := range st.Details.Causes {
		fieldsSeen[c.Field] = true
	}
	for _, f := range []string{"spec.size", "spec.tags[1]"} {
		if !fieldsSeen[f] {
			t.Errorf("no cause for %s in %+v", f, st.Details.Causes)
		}
	}
	_, err = dyn.Create(ctx(t), widget("w3", map[string]any{"size": "small", "replicas": int64(11)}), metav1.CreateOptions{})
	if st := statusOf(t, err); st.Code != 422 || !strings.Contains(st.Message, "spec: Invalid value: at most 10 replicas") {
		t.Errorf("CEL rule: %d %q", st.Code, st.Message)
	}
	// Strict field validation on the server: 400 naming the field.
	_, err = dyn.Create(ctx(t), widget("w4", map[string]any{"size": "small", "colour": "red"}), metav1.CreateOptions{FieldValidation: "Strict"})
	if st := statusOf(t, err); st.Code != 400 || !strings.Contains(st.Message, `unknown field "spec.colour"`) {
		t.Errorf("strict: %d %q", st.Code, st.Message)
	}
	// Without Strict, unknown fields are pruned.
	got, err := dyn.Create(ctx(t), widget("w5", map[string]any{"size": "large", "colour": "red"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedString(got.Object, "spec", "colour"); found {
		t.Errorf("unknown field kept: %v", got.Object)
	}
	if n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); n != 1 {
		t.Errorf("default replicas = %d, want 1", n)
	}

	// status: the main resource ignores status, the subresource writes only it.
	u, err := dyn.Get(ctx(t), "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(u.Object, "Ready", "status", "phase")
	if u, err = dyn.UpdateStatus(ctx(t), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != "Ready" {
		t.Errorf("status.phase = %q", phase)
	}
	gen := u.GetGeneration()
	s.MustKubectl(t, "scale", "-n", ns, "widget/w1", "--replicas=3")
	u, err = dyn.Get(ctx(t), "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); n != 3 || u.GetGeneration() != gen+1 {
		t.Errorf("after kubectl scale: replicas %d generation %d (was %d)", n, u.GetGeneration(), gen)
	}
	// Label and field selectors (selectableFields).
	list, err := dyn.List(ctx(t), metav1.ListOptions{FieldSelector: "spec.size=large"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].GetName() != "w5" {
		t.Errorf("field selector spec.size=large: %v", names(list))
	}
	if list, err = dyn.List(ctx(t), metav1.ListOptions{LabelSelector: "team=a"}); err != nil || len(list.Items) != 1 {
		t.Errorf("label selector: %v %v", names(list), err)
	}
	// Merge patch and JSON patch; strategic merge is refused (415).
	if _, err := dyn.Patch(ctx(t), "w1", "application/merge-patch+json", []byte(`{"spec":{"size":"large"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Patch(ctx(t), "w1", "application/json-patch+json", []byte(`[{"op":"replace","path":"/spec/size","value":"small"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = dyn.Patch(ctx(t), "w1", "application/strategic-merge-patch+json", []byte(`{"spec":{"size":"large"}}`), metav1.PatchOptions{})
	if st := statusOf(t, err); st.Code != 415 {
		t.Errorf("strategic merge patch: %d %s", st.Code, st.Message)
	}
	// Server-side apply with managedFields, conflicts and force: the
	// patches above made the dynamic client's manager own spec.size.
	_, stderr, err = s.KubectlStdin(strings.Replace(w, "size: small", "size: large", 1), "apply", "--server-side", "--field-manager=alice", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, "conflict") {
		t.Errorf("apply over another manager's field did not conflict: %v %s", err, stderr)
	}
	s.MustKubectlStdin(t, strings.Replace(w, "size: small", "size: large", 1), "apply", "--server-side", "--force-conflicts", "--field-manager=alice", "-n", ns, "-f", "-")
	_, stderr, err = s.KubectlStdin(w, "apply", "--server-side", "--field-manager=bob", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, "conflict") {
		t.Errorf("apply by another manager did not conflict: %v %s", err, stderr)
	}
	u, err = dyn.Get(ctx(t), "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{}
	for _, m := range u.GetManagedFields() {
		managers[m.Manager] = true
	}
	if !managers["alice"] {
		t.Errorf("managedFields lack alice: %v", managers)
	}
	// An applied configuration with a field the schema does not declare
	// is the client's error.
	_, stderr, err = s.KubectlStdin(strings.Replace(w, "size: small", "size: small\n  colour: red", 1), "apply", "--server-side", "--force-conflicts", "--validate=false", "--field-manager=alice", "-n", ns, "-f", "-")
	if err == nil || !strings.Contains(stderr, "BadRequest") && !strings.Contains(stderr, "colour") {
		t.Errorf("apply with an undeclared field: %v %s", err, stderr)
	}
	if strings.Contains(stderr, "InternalError") {
		t.Errorf("apply with an undeclared field is a 500: %s", stderr)
	}
	// YAML output.
	if out := s.MustKubectl(t, "get", "widget", "w1", "-n", ns, "-o", "yaml"); !strings.Contains(out, "kind: Widget") {
		t.Errorf("yaml:\n%s", out)
	}
	// Deleting the definition deletes its objects, then its discovery.
	s.MustKubectl(t, "delete", "crd", "widgets.example.com", "--wait=true", "--timeout=60s")
	_, err = dyn.Get(ctx(t), "w1", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after the definition's deletion: %v", err)
	}
	// Discovery follows the definitions' informer, as upstream's does:
	// the group version leaves it shortly after the definition is gone.
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		_, err := s.Clientset().Discovery().ServerResourcesForGroupVersion("example.com/v1")
		return apierrors.IsNotFound(err), nil
	}, "example.com/v1 to leave discovery after the definition's deletion")
}

func widget(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name}, "spec": spec,
	}}
}

func names(l *unstructured.UnstructuredList) []string {
	if l == nil {
		return nil
	}
	var out []string
	for _, i := range l.Items {
		out = append(out, i.GetName())
	}
	return out
}

// regexpFields reports whether a line of out holds the fields in order.
func regexpFields(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && slicesEqual(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

func slicesEqual(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func statusOf(t *testing.T, err error) metav1.Status {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got none")
	}
	var se apierrors.APIStatus
	if !asAPIStatus(err, &se) {
		t.Fatalf("error %v carries no Status", err)
	}
	return se.Status()
}

func asAPIStatus(err error, target *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*target = s
	}
	return ok
}

var _ = json.Marshal

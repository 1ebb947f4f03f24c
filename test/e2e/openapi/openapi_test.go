package openapi_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	openapiv2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"

	"github.com/havre/havre/test/framework"
)

func startServer(t *testing.T) *framework.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: builds and runs the havre binary (skipped with -short)")
	}
	s := framework.StartServer(t)
	// Build kubectl before the subtests, so its build is not charged to
	// one of them.
	framework.Kubectl(t)
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantLines fails t unless every pattern (a regular expression, matched
// line by line) matches a line of out.
func wantLines(t *testing.T, what, out string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		found := false
		for _, line := range strings.Split(out, "\n") {
			if re.MatchString(line) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no line matches %q in:\n%s", what, p, out)
		}
	}
}

// TestKubectlExplain runs kubectl explain, which reads /openapi/v3 (and,
// with --output=plaintext-openapiv2, /openapi/v2).
func TestKubectlExplain(t *testing.T) {
	s := startServer(t)

	t.Run("Pods", func(t *testing.T) {
		out := s.MustKubectl(t, "explain", "pods")
		wantLines(t, "explain pods", out,
			`^KIND:\s+Pod$`, `^VERSION:\s+v1$`, `^DESCRIPTION:`,
			`Pod is a collection of containers that can run on a host`,
			`^FIELDS:`, `^\s+spec\s+<PodSpec>$`, `^\s+metadata\s+<ObjectMeta>$`, `^\s+status\s+<PodStatus>$`)
	})

	t.Run("FieldPath", func(t *testing.T) {
		out := s.MustKubectl(t, "explain", "deployment.spec.template.spec.containers.livenessProbe")
		wantLines(t, "explain deployment...livenessProbe", out,
			`^GROUP:\s+apps$`, `^KIND:\s+Deployment$`, `^VERSION:\s+v1$`,
			`^FIELD:\s+livenessProbe\s+<Probe>$`,
			`Periodic probe of container liveness`,
			`^\s+httpGet\s+<HTTPGetAction>$`, `^\s+initialDelaySeconds\s+<integer>$`)
		// An IntOrString field and an enum.
		out = s.MustKubectl(t, "explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
		wantLines(t, "explain maxSurge", out, `^FIELD:\s+maxSurge\s+<IntOrString>$`)
	})

	t.Run("Recursive", func(t *testing.T) {
		for _, tt := range []struct {
			args     []string
			patterns []string
		}{
			{[]string{"deployments"}, []string{`^KIND:\s+Deployment$`, `^\s+livenessProbe\s+<Probe>$`, `^\s+maxUnavailable\s+<IntOrString>$`}},
			{[]string{"cronjobs.spec"}, []string{`^GROUP:\s+batch$`, `^\s+jobTemplate\s+<JobTemplateSpec> -required-$`, `^\s+containers\s+<\[\]Container> -required-$`}},
			{[]string{"services"}, []string{`^KIND:\s+Service$`, `^\s+ports\s+<\[\]ServicePort>$`, `^\s+targetPort\s+<IntOrString>$`}},
			{[]string{"ingresses"}, []string{`^GROUP:\s+networking.k8s.io$`, `^\s+rules\s+<\[\]IngressRule>$`}},
			{[]string{"hpa", "--api-version=autoscaling/v2"}, []string{`^GROUP:\s+autoscaling$`, `^VERSION:\s+v2$`, `^\s+scaleTargetRef\s+<CrossVersionObjectReference> -required-$`}},
		} {
			out := s.MustKubectl(t, append([]string{"explain", "--recursive"}, tt.args...)...)
			wantLines(t, "explain --recursive "+strings.Join(tt.args, " "), out, tt.patterns...)
		}
	})

	t.Run("APIVersion", func(t *testing.T) {
		out := s.MustKubectl(t, "explain", "--api-version=events.k8s.io/v1", "events")
		wantLines(t, "explain --api-version=events.k8s.io/v1 events", out,
			`^GROUP:\s+events.k8s.io$`, `^KIND:\s+Event$`, `^VERSION:\s+v1$`,
			`^\s+regarding\s+<ObjectReference>$`, `^\s+reportingController\s+<string>$`)
		// The core/v1 Event is another schema.
		out = s.MustKubectl(t, "explain", "--api-version=v1", "events")
		wantLines(t, "explain --api-version=v1 events", out, `^KIND:\s+Event$`, `^\s+involvedObject\s+<ObjectReference> -required-$`)
	})

	t.Run("OpenAPIV2", func(t *testing.T) {
		out := s.MustKubectl(t, "explain", "pods.spec.containers", "--output=plaintext-openapiv2")
		wantLines(t, "explain --output=plaintext-openapiv2", out,
			`^KIND:\s+Pod$`, `^VERSION:\s+v1$`, `^RESOURCE:\s+containers\s+<\[\]Object>$`, `^\s+image\s+<string>$`)
	})
}

// TestKubectlDefaultValidation runs kubectl create/apply -f without
// --validate: kubectl's default (strict) validation asks /openapi/v3
// whether the server supports fieldValidation on PATCH for the kind, and
// then sends fieldValidation=Strict and leaves validation to the server.
func TestKubectlDefaultValidation(t *testing.T) {
	s := startServer(t)
	s.MustKubectl(t, "create", "namespace", "oa")

	t.Run("CreateConfigMap", func(t *testing.T) {
		file := writeFile(t, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: validated\ndata:\n  k: v\n")
		out := s.MustKubectl(t, "-n", "oa", "create", "-f", file)
		if strings.TrimSpace(out) != "configmap/validated created" {
			t.Errorf("create -f printed %q", out)
		}
	})

	t.Run("ApplyEveryGroup", func(t *testing.T) {
		file := writeFile(t, "objects.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        livenessProbe:
          httpGet: {path: /, port: 80}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: tick
            image: busybox
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
spec:
  podSelector: {}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
`)
		out := s.MustKubectl(t, "-n", "oa", "apply", "-f", file)
		for _, want := range []string{"deployment.apps/web created", "cronjob.batch/tick created",
			"networkpolicy.networking.k8s.io/deny created", "poddisruptionbudget.policy/web created"} {
			if !strings.Contains(out, want) {
				t.Errorf("apply -f printed %q, want %q", out, want)
			}
		}
		// Applying again computes three-way strategic merge patches from
		// the OpenAPI schemas' patch strategies and finds nothing to change
		// (a PodDisruptionBudget is always "configured": its selector's
		// patchStrategy is replace, which upstream kubectl patches anyway).
		out = s.MustKubectl(t, "-n", "oa", "apply", "-f", file)
		for _, want := range []string{"deployment.apps/web unchanged", "cronjob.batch/tick unchanged", "networkpolicy.networking.k8s.io/deny unchanged"} {
			if !strings.Contains(out, want) {
				t.Errorf("second apply printed %q, want %q", out, want)
			}
		}
	})

	t.Run("UnknownFieldIsRejectedByTheServer", func(t *testing.T) {
		// Had kubectl not found fieldValidation in /openapi/v3 it would
		// validate client-side; it sends fieldValidation=Strict instead and
		// the server names the unknown field.
		file := writeFile(t, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndta:\n  k: v\n")
		out, errOut, err := s.Kubectl("-n", "oa", "create", "-f", file)
		if err == nil {
			t.Fatalf("create -f with an unknown field succeeded: %s", out)
		}
		if !strings.Contains(errOut, `unknown field "dta"`) || strings.Contains(errOut, "error validating") {
			t.Errorf("stderr %q, want the server's strict decoding error", errOut)
		}
	})
}

// TestClientGo fetches the documents with client-go: the OpenAPI v2
// protobuf (what kubectl's v2 paths and many controllers use) and v3
// through openapi3.Root; the v3 index must list every group version the
// server's discovery lists.
func TestClientGo(t *testing.T) {
	s := startServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(s.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("V2Protobuf", func(t *testing.T) {
		doc, err := dc.OpenAPISchema()
		if err != nil {
			t.Fatalf("OpenAPISchema: %v", err)
		}
		if doc.Swagger != "2.0" || doc.Info.GetTitle() != "Kubernetes" {
			t.Errorf("swagger %q, info %v", doc.Swagger, doc.Info)
		}
		var found bool
		for _, def := range doc.GetDefinitions().GetAdditionalProperties() {
			if def.Name == "io.k8s.api.apps.v1.Deployment" {
				found = true
			}
		}
		if !found {
			t.Errorf("no definition io.k8s.api.apps.v1.Deployment")
		}
	})

	t.Run("V3", func(t *testing.T) {
		root := openapi3.NewRoot(dc.OpenAPIV3())
		apps, err := root.GVSpec(schema.GroupVersion{Group: "apps", Version: "v1"})
		if err != nil {
			t.Fatalf("GVSpec(apps/v1): %v", err)
		}
		deployment := apps.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
		if deployment == nil || deployment.Properties["spec"].AllOf == nil {
			t.Fatalf("apps/v1 Deployment schema: %+v", deployment)
		}
		if patch := apps.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]; patch == nil || patch.Patch == nil {
			t.Errorf("no PATCH deployment")
		}

		listed, err := root.GroupVersions()
		if err != nil {
			t.Fatal(err)
		}
		inIndex := map[schema.GroupVersion]bool{}
		for _, gv := range listed {
			inIndex[gv] = true
		}
		groups, err := dc.ServerGroups()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups.Groups {
			for _, v := range g.Versions {
				gv := schema.GroupVersion{Group: g.Name, Version: v.Version}
				if !inIndex[gv] {
					t.Errorf("discovery serves %v, /openapi/v3 does not list it", gv)
				}
			}
		}
	})

	t.Run("Raw", func(t *testing.T) {
		client := s.HTTPClient()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/openapi/v2"), nil)
		req.Header.Set("Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
			t.Fatalf("%s, Content-Type %q", resp.Status, ct)
		}
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var doc openapiv2.Document
		if err := proto.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}

		// Anonymous clients are not served the documents.
		anon, err := s.AnonymousHTTPClient().Get(s.URL("/openapi/v3"))
		if err != nil {
			t.Fatal(err)
		}
		anon.Body.Close()
		if anon.StatusCode != http.StatusUnauthorized && anon.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous GET /openapi/v3: %s", anon.Status)
		}
	})

}

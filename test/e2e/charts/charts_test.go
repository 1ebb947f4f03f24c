// Package charts_test installs real third-party Helm charts, kept unmodified
// under testdata/<chart> (each with an ORIGIN file naming its repository,
// release tag, commit, path and licence), with unmodified helm v3 and v4, and
// follows each through a release's life: install, the CRDs Established, a
// bad custom resource rejected by the CRD's schema with the field's path, a
// good one listed with the CRD's printer columns, the chart's RBAC answering
// `kubectl auth can-i --as=system:serviceaccount:NS:SA`, upgrade, rollback
// and uninstall.
//
// No image can be pulled here, so the charts' pods never run: helm runs
// without --wait and the checks are of the API. The charts register
// admission webhooks whose servers are those pods; every check is one whose
// outcome does not depend on whether the server calls them (a bad object is
// rejected by its schema before any validating webhook is called; good
// objects are only of kinds no webhook guards, or in a namespace the
// chart's webhook selector leaves out).
//
// Each helm version gets a server of its own (the charts' cluster-scoped
// objects have fixed names), and the two run in parallel. The first run
// builds both helms (framework.HelmV3, framework.HelmV4); give it a
// -timeout of 30m.
package charts_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// helmTimeout bounds one helm command.
	helmTimeout = 3 * time.Minute
	// waitTimeout bounds a wait for the server to act (CRDs Established,
	// uninstalled objects gone).
	waitTimeout = 2 * time.Minute
)

// canI is one `kubectl auth can-i` question about a chart's service account.
type canI struct {
	sa   string   // service account, in the release's namespace
	args []string // verb, resource and flags, as kubectl takes them
	want bool
}

// badObject is a custom resource the CRD's schema (its OpenAPI schema or
// its x-kubernetes-validations rules) rejects; errs are parts of kubectl's
// error: the fields' paths and the reasons.
type badObject struct {
	manifest string
	errs     []string
}

// chart is one third-party chart and what the test checks of it.
type chart struct {
	name      string // directory under testdata
	release   string
	namespace string
	// set are the values the release is installed with (--set).
	set []string
	// crds are the CRDs the chart installs; crdsKept, whether they stay
	// after helm uninstall (crds/ directory or helm.sh/resource-policy: keep).
	crds     []string
	crdsKept bool
	// nsLabels label the release's namespace before the install.
	nsLabels []string

	// bad are custom resources the CRD's schema rejects.
	bad []badObject
	// good is a custom resource no webhook guards; list is the kubectl
	// get of it; columns, the header kubectl prints (the CRD's printer
	// columns); row, fields of its line.
	good    string
	list    []string
	columns []string
	row     []string

	canI []canI

	// upgrade are the values of the upgrade (--set); check checks the
	// value the release was rendered with: upgraded or not.
	upgrade []string
	check   func(t *testing.T, e *env, upgraded bool)

	// gone are objects (kubectl get arguments) helm uninstall deletes.
	gone [][]string
}

var (
	vwcGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	mwcGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

var charts = []chart{
	{
		name:      "traefik",
		release:   "traefik",
		namespace: "traefik",
		crds: []string{
			"ingressroutes.traefik.io", "ingressroutetcps.traefik.io", "ingressrouteudps.traefik.io",
			"middlewares.traefik.io", "middlewaretcps.traefik.io", "serverstransports.traefik.io",
			"serverstransporttcps.traefik.io", "tlsoptions.traefik.io", "tlsstores.traefik.io",
			"traefikservices.traefik.io", "apiversions.hub.traefik.io", "apis.hub.traefik.io",
		},
		crdsKept: true, // crds/: helm installs them once and never deletes them
		bad: []badObject{{`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: bad, namespace: traefik}
spec:
  routes:
  - kind: Nope
    match: Host(` + "`a.example`" + `)
    services: [{name: whoami, port: 80, weight: -1}]
`,
			[]string{
				`spec.routes[0].kind: Unsupported value: "Nope": supported values: "Rule"`,
				`spec.routes[0].services[0].weight: Invalid value: -1`,
			}}, {
			// The CRD's CEL rules (x-kubernetes-validations).
			`apiVersion: hub.traefik.io/v1alpha1
kind: APIVersion
metadata: {name: bad, namespace: traefik}
spec:
  release: not-semver
  openApiSpec: {path: nope, refreshInterval: 30s}
`, []string{
				`spec.release: Invalid value: "not-semver": must be a valid semver version`,
				`spec.openApiSpec.path: Invalid value: "nope": must start with a '/'`,
				`spec.openApiSpec.refreshInterval: Invalid value: "30s": must be at least 1m`,
			}}, {`apiVersion: hub.traefik.io/v1alpha1
kind: APIVersion
metadata: {name: bad, namespace: traefik}
spec:
  release: v1.0.0
  openApiSpec: {validateRequestBodySchema: true}
`, []string{`spec.openApiSpec: Invalid value: path or url must be defined`}}},
		good: `apiVersion: hub.traefik.io/v1alpha1
kind: APIVersion
metadata: {name: v1, namespace: traefik}
spec: {release: v1.0.0, title: hello}
`,
		list:    []string{"get", "apiversions.hub.traefik.io", "-n", "traefik"},
		columns: []string{"NAME", "TITLE", "RELEASE"},
		row:     []string{"v1", "hello", "v1.0.0"},
		canI: []canI{
			{"traefik", []string{"list", "ingressroutes.traefik.io", "--all-namespaces"}, true},
			{"traefik", []string{"watch", "middlewares.traefik.io", "-n", "default"}, true},
			{"traefik", []string{"create", "ingressroutes.traefik.io", "-n", "default"}, false},
			{"traefik", []string{"list", "secrets", "-n", "default"}, true},
			{"traefik", []string{"create", "secrets", "-n", "default"}, false},
			{"default", []string{"list", "ingressroutes.traefik.io", "-n", "traefik"}, false},
		},
		upgrade: []string{"deployment.replicas=2"},
		check: func(t *testing.T, e *env, upgraded bool) {
			want := "1"
			if upgraded {
				want = "2"
			}
			got := e.s.MustKubectl(t, "get", "deployment", "traefik", "-n", "traefik", "-o", "jsonpath={.spec.replicas}")
			if got != want {
				t.Errorf("Deployment traefik: replicas %s, want %s", got, want)
			}
		},
		gone: [][]string{
			{"deployment", "traefik", "-n", "traefik"},
			{"serviceaccount", "traefik", "-n", "traefik"},
			{"clusterrole", "traefik-traefik"},
			{"clusterrolebinding", "traefik-traefik"},
			{"ingressclass", "traefik"},
		},
	},
	{
		name:      "metallb",
		release:   "metallb",
		namespace: "metallb",
		crds: []string{
			"bfdprofiles.metallb.io", "bgpadvertisements.metallb.io", "bgppeers.metallb.io",
			"communities.metallb.io", "configurationstates.metallb.io", "ipaddresspools.metallb.io",
			"l2advertisements.metallb.io", "servicebgpstatuses.metallb.io", "servicel2statuses.metallb.io",
			"frrconfigurations.frrk8s.metallb.io",
		},
		crdsKept: false, // templates of the crds subchart: deleted with the release
		bad: []badObject{{`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad, namespace: metallb}
spec:
  addresses: 10.0.0.0/24
`,
			[]string{`spec.addresses: Invalid value: "string": spec.addresses in body must be of type array`}}},
		// No validating webhook of the chart guards configurationstates.
		good: `apiVersion: metallb.io/v1beta1
kind: ConfigurationState
metadata: {name: state, namespace: metallb}
`,
		list:    []string{"get", "configurationstates.metallb.io", "-n", "metallb"},
		columns: []string{"NAME", "RESULT", "ERRORSUMMARY", "AGE"},
		row:     []string{"state"},
		canI: []canI{
			{"metallb-controller", []string{"update", "services", "--subresource=status", "-n", "default"}, true},
			{"metallb-controller", []string{"update", "services", "-n", "default"}, false},
			{"metallb-controller", []string{"delete", "services", "-n", "default"}, false},
			{"metallb-controller", []string{"get", "customresourcedefinitions.apiextensions.k8s.io/bgppeers.metallb.io"}, true},
			{"metallb-controller", []string{"get", "customresourcedefinitions.apiextensions.k8s.io/other.example.com"}, false},
			{"metallb-controller", []string{"create", "secrets", "-n", "metallb"}, true},
			{"metallb-controller", []string{"create", "secrets", "-n", "default"}, false},
			{"metallb-speaker", []string{"list", "pods", "-n", "metallb"}, true},
			{"metallb-speaker", []string{"list", "pods", "-n", "default"}, false},
			{"metallb-speaker", []string{"delete", "servicel2statuses.metallb.io", "-n", "default"}, true},
		},
		upgrade: []string{"crds.validationFailurePolicy=Ignore"},
		check: func(t *testing.T, e *env, upgraded bool) {
			want := "Fail"
			if upgraded {
				want = "Ignore"
			}
			e.checkWebhooks(t, vwcGVR, "metallb-webhook-configuration", "failurePolicy", want)
		},
		gone: [][]string{
			{"deployment", "metallb-controller", "-n", "metallb"},
			{"daemonset", "metallb-speaker", "-n", "metallb"},
			{"serviceaccount", "metallb-controller", "-n", "metallb"},
			{"clusterrole", "metallb:controller"},
			{"role", "metallb-pod-lister", "-n", "metallb"},
			{"validatingwebhookconfiguration", "metallb-webhook-configuration"},
			// The CRD's custom resources go with it.
			{"customresourcedefinition", "ipaddresspools.metallb.io"},
			{"customresourcedefinition", "configurationstates.metallb.io"},
		},
	},
	{
		name:      "cert-manager",
		release:   "cert-manager",
		namespace: "cert-manager",
		// The chart's CRDs are templates behind crds.enabled; its
		// startupapicheck is a post-install hook Job that would wait for
		// the webhook's pod.
		set: []string{"crds.enabled=true", "startupapicheck.enabled=false"},
		crds: []string{
			"certificaterequests.cert-manager.io", "certificates.cert-manager.io", "challenges.acme.cert-manager.io",
			"clusterissuers.cert-manager.io", "issuers.cert-manager.io", "orders.acme.cert-manager.io",
		},
		crdsKept: true, // helm.sh/resource-policy: keep (crds.keep=true)
		// The chart's validating webhook leaves out namespaces labelled so
		// (webhook.validatingWebhookConfiguration.namespaceSelector); its
		// mutating webhook only takes CertificateRequests.
		nsLabels: []string{"cert-manager.io/disable-validation=true"},
		bad: []badObject{{`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: bad, namespace: cert-manager}
spec:
  secretName: bad-tls
  dnsNames: [a.example]
  issuerRef: {name: selfsigned}
  privateKey: {algorithm: DSA}
`,
			[]string{`spec.privateKey.algorithm: Unsupported value: "DSA": supported values: "RSA", "ECDSA", "Ed25519"`}}},
		good: `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: cert-manager}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: good, namespace: cert-manager}
spec:
  secretName: good-tls
  dnsNames: [a.example]
  issuerRef: {name: selfsigned}
`,
		list:    []string{"get", "certificates.cert-manager.io", "-n", "cert-manager", "-o", "wide"},
		columns: []string{"NAME", "READY", "SECRET", "ISSUER", "STATUS", "AGE"},
		row:     []string{"good", "good-tls", "selfsigned"},
		canI: []canI{
			{"cert-manager", []string{"get", "leases.coordination.k8s.io/cert-manager-controller", "-n", "kube-system"}, true},
			{"cert-manager", []string{"update", "leases.coordination.k8s.io/other", "-n", "kube-system"}, false},
			{"cert-manager", []string{"create", "leases.coordination.k8s.io", "-n", "kube-system"}, true},
			{"cert-manager", []string{"patch", "issuers.cert-manager.io", "--subresource=status", "-n", "default"}, true},
			{"cert-manager", []string{"delete", "issuers.cert-manager.io", "-n", "default"}, false},
			{"cert-manager-webhook", []string{"create", "subjectaccessreviews.authorization.k8s.io"}, true},
			{"cert-manager-webhook", []string{"get", "secrets/cert-manager-webhook-ca", "-n", "cert-manager"}, true},
			{"cert-manager-webhook", []string{"get", "secrets/other", "-n", "cert-manager"}, false},
			{"cert-manager-cainjector", []string{"patch", "validatingwebhookconfigurations.admissionregistration.k8s.io"}, true},
			{"cert-manager-cainjector", []string{"delete", "validatingwebhookconfigurations.admissionregistration.k8s.io"}, false},
		},
		upgrade: []string{"webhook.timeoutSeconds=20"},
		check: func(t *testing.T, e *env, upgraded bool) {
			want := "30"
			if upgraded {
				want = "20"
			}
			e.checkWebhooks(t, vwcGVR, "cert-manager-webhook", "timeoutSeconds", want)
			e.checkWebhooks(t, mwcGVR, "cert-manager-webhook", "timeoutSeconds", want)
		},
		gone: [][]string{
			{"deployment", "cert-manager", "-n", "cert-manager"},
			{"deployment", "cert-manager-webhook", "-n", "cert-manager"},
			{"serviceaccount", "cert-manager-cainjector", "-n", "cert-manager"},
			{"clusterrole", "cert-manager-controller-issuers"},
			{"role", "cert-manager:leaderelection", "-n", "kube-system"},
			{"validatingwebhookconfiguration", "cert-manager-webhook"},
			{"mutatingwebhookconfiguration", "cert-manager-webhook"},
		},
	},
}

// TestChartsHelmV3 runs the charts with helm v3 (POST and three-way
// strategic merge patches).
func TestChartsHelmV3(t *testing.T) {
	t.Parallel()
	testCharts(t, framework.HelmV3)
}

// TestChartsHelmV4 runs the charts with helm v4 (server-side apply).
func TestChartsHelmV4(t *testing.T) {
	t.Parallel()
	testCharts(t, framework.HelmV4)
}

// env is one helm binary against one server.
type env struct {
	s    *framework.Server
	helm *framework.Helm
}

func testCharts(t *testing.T, build func(testing.TB) string) {
	if testing.Short() {
		t.Skip("e2e test: builds helm and runs the havre binary (skipped with -short)")
	}
	bin := build(t)
	e := &env{s: framework.StartServer(t)}
	e.helm = framework.NewHelm(t, bin, e.s.Kubeconfig())
	e.helm.Timeout = helmTimeout
	for _, c := range charts {
		t.Run(c.name, func(t *testing.T) {
			e.life(t, c)
		})
	}
}

func (e *env) life(t *testing.T, c chart) {
	dir, err := filepath.Abs(filepath.Join("testdata", c.name))
	if err != nil {
		t.Fatal(err)
	}
	// The steps are one release's life, in order: stop at the first that
	// fails.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	e.s.MustKubectl(t, "create", "namespace", c.namespace)
	if len(c.nsLabels) > 0 {
		e.s.MustKubectl(t, append([]string{"label", "namespace", c.namespace}, c.nsLabels...)...)
	}
	withSet := func(args []string, set []string) []string {
		for _, v := range set {
			args = append(args, "--set", v)
		}
		return args
	}

	step("Install", func(t *testing.T) {
		out := e.helm.Must(t, withSet([]string{"install", c.release, dir, "--namespace", c.namespace}, c.set)...)
		if !strings.Contains(out, "STATUS: deployed") {
			t.Errorf("install printed:\n%s", out)
		}
	})

	step("CRDsEstablished", func(t *testing.T) {
		for _, name := range c.crds {
			e.waitEstablished(t, name)
		}
	})

	step("SchemaRejects", func(t *testing.T) {
		for _, b := range c.bad {
			_, stderr, err := e.s.KubectlStdin(b.manifest, "create", "-f", "-")
			if err == nil {
				t.Errorf("kubectl create of an invalid object succeeded:\n%s", b.manifest)
				continue
			}
			if !strings.Contains(stderr, "is invalid") {
				t.Errorf("kubectl create: %s; want an Invalid error", stderr)
			}
			for _, want := range b.errs {
				if !strings.Contains(stderr, want) {
					t.Errorf("kubectl create: %s\nwant it to contain %q", stderr, want)
				}
			}
		}
	})

	step("PrinterColumns", func(t *testing.T) {
		e.s.MustKubectlStdin(t, c.good, "create", "-f", "-")
		out := e.s.MustKubectl(t, c.list...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 {
			t.Fatalf("kubectl %s printed:\n%s", strings.Join(c.list, " "), out)
		}
		if got := strings.Fields(lines[0]); !slices.Equal(got, c.columns) {
			t.Errorf("kubectl %s: columns %q, want %q", strings.Join(c.list, " "), got, c.columns)
		}
		row := strings.Fields(lines[len(lines)-1])
		for _, want := range c.row {
			if !slices.Contains(row, want) {
				t.Errorf("kubectl %s: row %q, want it to hold %q", strings.Join(c.list, " "), row, want)
			}
		}
	})

	step("RBAC", func(t *testing.T) {
		for _, q := range c.canI {
			e.checkCanI(t, c.namespace, q)
		}
	})

	if c.check != nil {
		step("Installed", func(t *testing.T) { c.check(t, e, false) })
	}

	step("Upgrade", func(t *testing.T) {
		args := withSet([]string{"upgrade", c.release, dir, "--namespace", c.namespace, "--reuse-values"}, c.upgrade)
		out := e.helm.Must(t, args...)
		if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "REVISION: 2") {
			t.Errorf("upgrade printed:\n%s", out)
		}
		c.check(t, e, true)
	})

	step("Rollback", func(t *testing.T) {
		out := e.helm.Must(t, "rollback", c.release, "1", "--namespace", c.namespace)
		if !strings.Contains(out, "Rollback was a success") {
			t.Errorf("rollback printed:\n%s", out)
		}
		c.check(t, e, false)
		// The chart's RBAC still answers as before.
		for _, q := range c.canI {
			e.checkCanI(t, c.namespace, q)
		}
	})

	step("Uninstall", func(t *testing.T) {
		out := e.helm.Must(t, "uninstall", c.release, "--namespace", c.namespace)
		if !strings.Contains(out, fmt.Sprintf("release %q uninstalled", c.release)) {
			t.Errorf("uninstall printed:\n%s", out)
		}
		for _, args := range c.gone {
			e.waitGone(t, args)
		}
		if c.crdsKept {
			for _, name := range c.crds {
				e.waitEstablished(t, name)
			}
		} else {
			for _, name := range c.crds {
				e.waitGone(t, []string{"customresourcedefinition", name})
			}
		}
		if _, stderr, err := e.helm.Run("status", c.release, "--namespace", c.namespace); err == nil || !strings.Contains(stderr, "not found") {
			t.Errorf("helm status after uninstall: err %v, stderr %q; want a release not found error", err, stderr)
		}
	})
}

// waitEstablished waits for the CRD's Established condition to be True.
func (e *env) waitEstablished(t *testing.T, name string) {
	t.Helper()
	dyn := e.s.Dynamic()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		crd, err := dyn.Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	}, "CRD %s is not Established", name)
}

// waitGone waits for `kubectl get args` to answer NotFound.
func (e *env) waitGone(t *testing.T, args []string) {
	t.Helper()
	framework.Eventually(t, waitTimeout, func() (bool, error) {
		_, stderr, err := e.s.Kubectl(append([]string{"get"}, args...)...)
		if err == nil {
			return false, nil
		}
		if strings.Contains(stderr, "NotFound") {
			return true, nil
		}
		return false, fmt.Errorf("%v: %s", err, stderr)
	}, "%s still exists after helm uninstall", strings.Join(args, " "))
}

// checkCanI asks kubectl auth can-i as the service account.
func (e *env) checkCanI(t *testing.T, ns string, q canI) {
	t.Helper()
	args := append([]string{"auth", "can-i"}, q.args...)
	args = append(args, "--as=system:serviceaccount:"+ns+":"+q.sa)
	stdout, stderr, err := e.s.Kubectl(args...)
	got := strings.TrimSpace(stdout)
	// kubectl auth can-i exits 1 when the answer is no.
	var exit *exec.ExitError
	if err != nil && !(got == "no" && errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr)
		return
	}
	want := "no"
	if q.want {
		want = "yes"
	}
	if got != want {
		t.Errorf("kubectl %s: %q, want %q", strings.Join(args, " "), got, want)
	}
}

// checkWebhooks checks field of every webhook of the webhook configuration.
func (e *env) checkWebhooks(t *testing.T, gvr schema.GroupVersionResource, name, field, want string) {
	t.Helper()
	obj, err := e.s.Dynamic().Resource(gvr).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s %s: %v", gvr.Resource, name, err)
	}
	hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
	if len(hooks) == 0 {
		t.Fatalf("%s %s has no webhooks", gvr.Resource, name)
	}
	for _, h := range hooks {
		m, _ := h.(map[string]any)
		if got := fmt.Sprint(m[field]); got != want {
			t.Errorf("%s %s: webhook %v: %s %s, want %s", gvr.Resource, name, m["name"], field, got, want)
		}
	}
}

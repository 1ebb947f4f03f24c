// Package helm_test drives the havre binary with unmodified helm v3 and v4
// (built from their release tags by the test framework) through a chart's
// whole life: install, list, status, upgrade, history, rollback, uninstall,
// checking the objects and helm's release records (Secrets of type
// helm.sh/release.v1) in the API after every step.
//
// Nothing runs pods yet (there is no node agent), so helm's --wait, which
// waits for the Deployment's pods to be ready, is not used.
//
// The first run builds both helms (framework.HelmV3, framework.HelmV4: a few
// minutes each, fetching modules from the Go module proxy) into the user's
// cache directory; give it a -timeout of 30m. Later runs reuse the builds.
package helm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/havre/havre/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }

const (
	// helmTimeout bounds one helm command.
	helmTimeout = 2 * time.Minute
	// goneTimeout bounds the wait for uninstalled objects to disappear.
	goneTimeout = 30 * time.Second

	release   = "demo"
	namespace = "helm-e2e"
	// chartName is testdata/chart's name and version as helm lists them.
	chartName = "havre-e2e-0.1.0"
)

// TestHelmV3 runs the chart's life with helm v3, which creates objects with
// POST and updates them with three-way strategic merge patches.
func TestHelmV3(t *testing.T) {
	t.Parallel()
	testHelm(t, framework.HelmV3, metav1.ManagedFieldsOperationUpdate)
}

// TestHelmV4 runs the chart's life with helm v4, which applies objects with
// server-side apply by default (PATCH application/apply-patch+yaml) and keeps
// using it for upgrades and rollbacks of releases installed that way.
func TestHelmV4(t *testing.T) {
	t.Parallel()
	testHelm(t, framework.HelmV4, metav1.ManagedFieldsOperationApply)
}

// object is one object the chart renders for the release.
type object struct {
	kind string
	get  func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error)
	name string
}

var chartObjects = []object{
	{"ConfigMap", func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error) {
		return cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	}, release + "-config"},
	{"Secret", func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error) {
		return cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	}, release + "-secret"},
	{"ServiceAccount", func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error) {
		return cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	}, release + "-sa"},
	{"Service", func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error) {
		return cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	}, release + "-svc"},
	{"Deployment", func(ctx context.Context, cs kubernetes.Interface, ns, name string) (metav1.Object, error) {
		return cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	}, release + "-app"},
}

// testHelm runs the steps with the helm that build returns. op is how that
// helm writes objects, as the server records it in managedFields: Update
// for POST, PUT and PATCH, Apply for server-side apply.
func testHelm(t *testing.T, build func(testing.TB) string, op metav1.ManagedFieldsOperationType) {
	if testing.Short() {
		t.Skip("e2e test: builds helm and runs the havre binary (skipped with -short)")
	}
	// Build helm first, so that a first (slow) build does not leave the
	// server idle with nothing in its log.
	bin := build(t)
	s := framework.StartServer(t)
	cs := s.Clientset()
	h := &helmCLI{Helm: framework.NewHelm(t, bin, s.Kubeconfig()), op: op}
	h.Timeout = helmTimeout
	chart, err := filepath.Abs(filepath.Join("testdata", "chart"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", h.Must(t, "version"))

	if _, err := cs.CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: namespace},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}

	// The steps are one release's life, in order: stop at the first that
	// fails, the later ones would only repeat its failure.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("Install", func(t *testing.T) {
		out := h.Must(t, "install", release, chart, "--namespace", namespace)
		if !strings.Contains(out, "STATUS: deployed") {
			t.Errorf("install printed:\n%s", out)
		}
		checkObjects(t, cs, h.op, "hello", "1")
		checkReleaseSecrets(t, cs, map[int]string{1: "deployed"})
	})

	step("List", func(t *testing.T) {
		var list []struct {
			Name, Namespace, Revision, Status, Chart string
			AppVersion                               string `json:"app_version"`
		}
		h.mustJSON(t, &list, "list", "--namespace", namespace, "--output", "json")
		if len(list) != 1 {
			t.Fatalf("helm list: %+v, want the one release", list)
		}
		r := list[0]
		if r.Name != release || r.Namespace != namespace || r.Revision != "1" || r.Status != "deployed" ||
			r.Chart != chartName || r.AppVersion != "1.0.0" {
			t.Errorf("helm list: %+v", r)
		}
		// Across namespaces: a cluster-wide list of Secrets by label.
		h.mustJSON(t, &list, "list", "--all-namespaces", "--output", "json")
		if len(list) != 1 || list[0].Name != release || list[0].Namespace != namespace {
			t.Errorf("helm list --all-namespaces: %+v", list)
		}
	})

	step("Status", func(t *testing.T) {
		var st releaseStatus
		h.mustJSON(t, &st, "status", release, "--namespace", namespace, "--output", "json")
		if st.Name != release || st.Namespace != namespace || st.Version != 1 || st.Info.Status != "deployed" {
			t.Errorf("helm status: %+v", st)
		}
		if !strings.Contains(st.Manifest, "kind: Deployment") {
			t.Errorf("helm status: the release manifest has no Deployment:\n%s", st.Manifest)
		}
	})

	step("Upgrade", func(t *testing.T) {
		out := h.Must(t, "upgrade", release, chart, "--namespace", namespace, "--set", "greeting=bonjour")
		if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "REVISION: 2") {
			t.Errorf("upgrade printed:\n%s", out)
		}
		checkObjects(t, cs, h.op, "bonjour", "2")
		checkReleaseSecrets(t, cs, map[int]string{1: "superseded", 2: "deployed"})
	})

	step("History", func(t *testing.T) {
		checkHistory(t, h, []historyEntry{
			{Revision: 1, Status: "superseded", Chart: chartName, Description: "Install complete"},
			{Revision: 2, Status: "deployed", Chart: chartName, Description: "Upgrade complete"},
		})
	})

	step("Rollback", func(t *testing.T) {
		out := h.Must(t, "rollback", release, "1", "--namespace", namespace)
		if !strings.Contains(out, "Rollback was a success") {
			t.Errorf("rollback printed:\n%s", out)
		}
		// The manifest of revision 1 is applied again, as rendered then.
		checkObjects(t, cs, h.op, "hello", "1")
		checkReleaseSecrets(t, cs, map[int]string{1: "superseded", 2: "superseded", 3: "deployed"})
		checkHistory(t, h, []historyEntry{
			{Revision: 1, Status: "superseded", Chart: chartName, Description: "Install complete"},
			{Revision: 2, Status: "superseded", Chart: chartName, Description: "Upgrade complete"},
			{Revision: 3, Status: "deployed", Chart: chartName, Description: "Rollback to 1"},
		})
	})

	step("Uninstall", func(t *testing.T) {
		out := h.Must(t, "uninstall", release, "--namespace", namespace)
		if !strings.Contains(out, `release "demo" uninstalled`) {
			t.Errorf("uninstall printed:\n%s", out)
		}
		// Helm deletes with propagationPolicy=Background: the objects
		// themselves go at once, their dependents (none here) later.
		for _, o := range chartObjects {
			framework.Eventually(t, goneTimeout, func() (bool, error) {
				_, err := o.get(ctx(t), cs, namespace, o.name)
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				return false, err
			}, "%s %s/%s still exists after helm uninstall", o.kind, namespace, o.name)
		}
		checkReleaseSecrets(t, cs, map[int]string{})
		var list []json.RawMessage
		h.mustJSON(t, &list, "list", "--uninstalled", "--namespace", namespace, "--output", "json")
		if len(list) != 0 {
			t.Errorf("helm list --uninstalled after uninstall: %s", list)
		}
		_, stderr, err := h.Run("status", release, "--namespace", namespace)
		if err == nil || !strings.Contains(stderr, "not found") {
			t.Errorf("helm status after uninstall: err %v, stderr %q; want a release not found error", err, stderr)
		}
	})
}

// helmCLI runs one helm binary against one server.
type helmCLI struct {
	*framework.Helm
	// op is the managedFields operation of helm's writes.
	op metav1.ManagedFieldsOperationType
}

// mustJSON runs helm ... --output json and decodes stdout into v.
func (h *helmCLI) mustJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := h.Must(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("helm %s: %v; output:\n%s", strings.Join(args, " "), err, out)
	}
}

// releaseStatus is the part of `helm status -o json` the test reads.
type releaseStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Version   int    `json:"version"`
	Manifest  string `json:"manifest"`
	Info      struct {
		Status string `json:"status"`
	} `json:"info"`
}

// historyEntry is one revision in `helm history -o json`.
type historyEntry struct {
	Revision    int    `json:"revision"`
	Status      string `json:"status"`
	Chart       string `json:"chart"`
	Description string `json:"description"`
}

func checkHistory(t *testing.T, h *helmCLI, want []historyEntry) {
	t.Helper()
	var got []historyEntry
	h.mustJSON(t, &got, "history", release, "--namespace", namespace, "--output", "json")
	if !slices.Equal(got, want) {
		t.Errorf("helm history:\n got %+v\nwant %+v", got, want)
	}
}

// checkObjects checks that every object of the chart exists, is marked as
// the release's, was written by helm with op, and carries the greeting (and the release revision it was
// rendered for) from the values.
func checkObjects(t *testing.T, cs kubernetes.Interface, op metav1.ManagedFieldsOperationType, greeting, revision string) {
	t.Helper()
	for _, o := range chartObjects {
		obj, err := o.get(ctx(t), cs, namespace, o.name)
		if err != nil {
			t.Errorf("%s %s/%s: %v", o.kind, namespace, o.name, err)
			continue
		}
		// Helm's ownership marks (pkg/action/validate.go): without them
		// the next upgrade refuses to touch the object.
		if got := obj.GetLabels()["app.kubernetes.io/managed-by"]; got != "Helm" {
			t.Errorf("%s %s: label app.kubernetes.io/managed-by=%q, want Helm", o.kind, o.name, got)
		}
		ann := obj.GetAnnotations()
		if ann["meta.helm.sh/release-name"] != release || ann["meta.helm.sh/release-namespace"] != namespace {
			t.Errorf("%s %s: annotations %v, want meta.helm.sh/release-name=%s and release-namespace=%s",
				o.kind, o.name, ann, release, namespace)
		}
		// Helm names its field manager after its binary, "helm"
		// (pkg/kube/client.go, getManagedFieldsManager).
		var managers []string
		found := false
		for _, e := range obj.GetManagedFields() {
			managers = append(managers, fmt.Sprintf("%s/%s", e.Manager, e.Operation))
			found = found || e.Manager == "helm" && e.Operation == op
		}
		if !found {
			t.Errorf("%s %s: managedFields %v, want an entry helm/%s", o.kind, o.name, managers, op)
		}
	}
	if t.Failed() {
		return
	}
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx(t), release+"-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["greeting"] != greeting || cm.Data["revision"] != revision {
		t.Errorf("ConfigMap data %v, want greeting=%s revision=%s", cm.Data, greeting, revision)
	}
	sec, err := cs.CoreV1().Secrets(namespace).Get(ctx(t), release+"-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(sec.Data["token"]), "token-for-"+greeting; got != want {
		t.Errorf("Secret token %q, want %q", got, want)
	}
	dep, err := cs.AppsV1().Deployments(namespace).Get(ctx(t), release+"-app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if spec := dep.Spec.Template.Spec; spec.ServiceAccountName != release+"-sa" || len(spec.Containers) != 1 {
		t.Errorf("Deployment pod spec: serviceAccountName %q, %d containers", spec.ServiceAccountName, len(spec.Containers))
	}
	svc, err := cs.CoreV1().Services(namespace).Get(ctx(t), release+"-svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}
}

// checkReleaseSecrets checks helm's release records: one Secret per
// revision, sh.helm.release.v1.<release>.v<revision>, of type
// helm.sh/release.v1, labelled owner=helm, name=<release>,
// status=<status> and version=<revision>. want maps revision to status.
func checkReleaseSecrets(t *testing.T, cs kubernetes.Interface, want map[int]string) {
	t.Helper()
	// The selector helm lists its history with (pkg/storage/driver).
	list, err := cs.CoreV1().Secrets(namespace).List(ctx(t), metav1.ListOptions{
		LabelSelector: "owner=helm,name=" + release,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, sec := range list.Items {
		var rev int
		if _, err := fmt.Sscanf(sec.Labels["version"], "%d", &rev); err != nil {
			t.Errorf("release Secret %s: label version=%q", sec.Name, sec.Labels["version"])
			continue
		}
		if want := fmt.Sprintf("sh.helm.release.v1.%s.v%d", release, rev); sec.Name != want {
			t.Errorf("release Secret %s of revision %d, want the name %s", sec.Name, rev, want)
		}
		if sec.Type != "helm.sh/release.v1" {
			t.Errorf("release Secret %s: type %q, want helm.sh/release.v1", sec.Name, sec.Type)
		}
		if len(sec.Data["release"]) == 0 {
			t.Errorf("release Secret %s has no data.release", sec.Name)
		}
		got[rev] = sec.Labels["status"]
	}
	if len(got) != len(want) {
		t.Errorf("release Secrets (revision: status): %v, want %v", got, want)
		return
	}
	for rev, status := range want {
		if got[rev] != status {
			t.Errorf("release Secrets (revision: status): %v, want %v", got, want)
			return
		}
	}
	// A selector that matches nothing must find nothing: the server
	// filters by label, as helm relies on.
	other, err := cs.CoreV1().Secrets(namespace).List(ctx(t), metav1.ListOptions{
		LabelSelector: "owner=helm,name=" + release + "-other",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Items) != 0 {
		t.Errorf("label selector name=%s-other matched %d Secrets", release, len(other.Items))
	}
}

// ctx bounds one API request of a test.
var ctx = framework.RequestContext

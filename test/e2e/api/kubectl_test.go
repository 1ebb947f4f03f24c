package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/havre/havre/test/framework"
)

// TestKubectl drives the server with the upstream kubectl (built from the
// k8s.io/kubectl version in go.mod) as a user would. Its subtests are the
// steps of one session, in order: later ones use what earlier ones created,
// so run the whole test rather than a single step.
func TestKubectl(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	// Build kubectl before the subtests, so its first build is not
	// charged to one of them.
	framework.Kubectl(t)

	// kubectl creates the namespaces the subtests work in.
	const ns, other = "kc", "kc-other"
	t.Run("CreateNamespace", func(t *testing.T) {
		for _, name := range []string{ns, other} {
			out := s.MustKubectl(t, "create", "namespace", name)
			if strings.TrimSpace(out) != "namespace/"+name+" created" {
				t.Errorf("create namespace printed %q", out)
			}
		}
		if out := s.MustKubectl(t, "get", "namespace", ns, "-o", "name"); strings.TrimSpace(out) != "namespace/"+ns {
			t.Errorf("get namespace -o name printed %q", out)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx(t), ns, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CreateConfigMap", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=2")
		if strings.TrimSpace(out) != "configmap/cm1 created" {
			t.Errorf("printed %q", out)
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["a"] != "1" || cm.Data["b"] != "2" {
			t.Errorf("data %v", cm.Data)
		}
	})

	t.Run("CreateSecret", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "create", "secret", "generic", "s1", "--from-literal=password=hunter2")
		if strings.TrimSpace(out) != "secret/s1 created" {
			t.Errorf("printed %q", out)
		}
		sec, err := cs.CoreV1().Secrets(ns).Get(ctx(t), "s1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(sec.Data["password"]) != "hunter2" || sec.Type != corev1.SecretTypeOpaque {
			t.Errorf("secret type %q data %q", sec.Type, sec.Data)
		}
	})

	t.Run("CreateDeployment", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "create", "deployment", "web", "--image=registry.example/web:1.0", "--replicas=2")
		if strings.TrimSpace(out) != "deployment.apps/web created" {
			t.Errorf("printed %q", out)
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx(t), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "registry.example/web:1.0" || d.Spec.Selector.MatchLabels["app"] != "web" {
			t.Errorf("deployment spec %+v", d.Spec)
		}
	})

	t.Run("CreateFromFile", func(t *testing.T) {
		file := writeFile(t, "objects.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: from-file
data:
  k: v
---
apiVersion: v1
kind: Service
metadata:
  name: from-file
spec:
  selector:
    app: web
  ports:
  - port: 80
`)
		out := s.MustKubectl(t, "-n", ns, "create", "--validate=false", "-f", file)
		for _, want := range []string{"configmap/from-file created", "service/from-file created"} {
			if !strings.Contains(out, want) {
				t.Errorf("create -f printed %q, want %q", out, want)
			}
		}
		if _, err := cs.CoreV1().Services(ns).Get(ctx(t), "from-file", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("CreateFromFileWithValidation", func(t *testing.T) {
		// kubectl's default --validate=strict needs the server's OpenAPI
		// documents, which the API core contract does not include.
		if r := do(t, s.HTTPClient(), "GET", s.URL("/openapi/v3"), "", "application/json", nil); r.Code == http.StatusNotFound {
			t.Skip("server does not serve /openapi/v3; kubectl create -f with default validation needs it")
		}
		file := writeFile(t, "validated.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: validated\ndata:\n  k: v\n")
		out := s.MustKubectl(t, "-n", ns, "create", "-f", file)
		if strings.TrimSpace(out) != "configmap/validated created" {
			t.Errorf("printed %q", out)
		}
	})

	t.Run("Label", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "label", "configmap", "cm1", "e2e=kubectl", "tier=one")
		if strings.TrimSpace(out) != "configmap/cm1 labeled" {
			t.Errorf("printed %q", out)
		}
		s.MustKubectl(t, "-n", ns, "label", "configmap", "cm1", "tier=two", "--overwrite")
		s.MustKubectl(t, "-n", other, "create", "configmap", "cm-other")
		s.MustKubectl(t, "-n", other, "label", "configmap", "cm-other", "e2e=kubectl")
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Labels["e2e"] != "kubectl" || cm.Labels["tier"] != "two" {
			t.Errorf("labels %v", cm.Labels)
		}
		// Without --overwrite an existing label is not changed.
		if _, errOut, err := s.Kubectl("-n", ns, "label", "configmap", "cm1", "tier=three"); err == nil {
			t.Errorf("label without --overwrite succeeded; stderr %q", errOut)
		}
		s.MustKubectl(t, "-n", ns, "label", "configmap", "cm1", "tier-")
		cm, err = cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cm.Labels["tier"]; ok || cm.Labels["e2e"] != "kubectl" {
			t.Errorf("labels after removing tier: %v", cm.Labels)
		}
	})

	t.Run("Annotate", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "annotate", "configmap", "cm1", "note=hello world")
		if strings.TrimSpace(out) != "configmap/cm1 annotated" {
			t.Errorf("printed %q", out)
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Annotations["note"] != "hello world" {
			t.Errorf("annotations %v", cm.Annotations)
		}
	})

	t.Run("Get", func(t *testing.T) {
		table := s.MustKubectl(t, "-n", ns, "get", "configmaps")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "NAME") || !slices.ContainsFunc(lines[1:], func(l string) bool { return strings.HasPrefix(l, "cm1 ") }) {
			t.Errorf("kubectl get configmaps printed:\n%s", table)
		}

		names := strings.Fields(s.MustKubectl(t, "-n", ns, "get", "configmaps", "-o", "name"))
		for _, want := range []string{"configmap/cm1", "configmap/from-file"} {
			if !slices.Contains(names, want) {
				t.Errorf("-o name printed %v, want %s among them", names, want)
			}
		}

		var list struct {
			Kind  string `json:"kind"`
			Items []corev1.ConfigMap
		}
		if err := json.Unmarshal([]byte(s.MustKubectl(t, "-n", ns, "get", "configmaps", "-o", "json")), &list); err != nil {
			t.Fatalf("-o json: %v", err)
		}
		if list.Kind != "List" || !slices.Contains(configMapNames(list.Items), "cm1") {
			t.Errorf("-o json: kind %q names %v", list.Kind, configMapNames(list.Items))
		}

		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(s.MustKubectl(t, "-n", ns, "get", "configmap", "cm1", "-o", "yaml")), &cm); err != nil {
			t.Fatalf("-o yaml: %v", err)
		}
		if cm.Name != "cm1" || cm.Data["a"] != "1" || cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
			t.Errorf("-o yaml decoded to %+v", cm)
		}

		if out := s.MustKubectl(t, "-n", ns, "get", "configmap", "cm1", "-o", "jsonpath={.data.b}"); out != "2" {
			t.Errorf("-o jsonpath printed %q", out)
		}

		selected := strings.Fields(s.MustKubectl(t, "-n", ns, "get", "configmaps", "-l", "e2e=kubectl", "-o", "name"))
		if !slices.Equal(selected, []string{"configmap/cm1"}) {
			t.Errorf("-l e2e=kubectl printed %v", selected)
		}

		all := s.MustKubectl(t, "get", "configmaps", "-A", "-l", "e2e=kubectl")
		if !hasLineWithPrefix(all, "NAMESPACE") || !hasLineWithFieldsPrefix(all, ns, "cm1") || !hasLineWithFieldsPrefix(all, other, "cm-other") {
			t.Errorf("-A -l e2e=kubectl printed:\n%s", all)
		}
		ns2 := s.MustKubectl(t, "get", "namespaces")
		// Upstream's per-kind columns (STATUS here) are the Tables work of
		// the kubectl-parity issue; the default Table has NAME and AGE.
		for _, want := range []string{"default", "kube-system", ns} {
			if !hasLineWithPrefix(ns2, want+" ") {
				t.Errorf("get namespaces has no row for %s:\n%s", want, ns2)
			}
		}

		_, errOut, err := s.Kubectl("-n", ns, "get", "configmap", "missing")
		if err == nil || !strings.Contains(errOut, `Error from server (NotFound): configmaps "missing" not found`) {
			t.Errorf("get of a missing object: err %v stderr %q", err, errOut)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		for _, tc := range []struct {
			typ, patch string
			check      func(*corev1.ConfigMap) bool
		}{
			{"merge", `{"data":{"a":"10"}}`, func(cm *corev1.ConfigMap) bool { return cm.Data["a"] == "10" }},
			{"json", `[{"op":"add","path":"/data/c","value":"3"}]`, func(cm *corev1.ConfigMap) bool { return cm.Data["c"] == "3" }},
			{"strategic", `{"data":{"b":null}}`, func(cm *corev1.ConfigMap) bool { _, ok := cm.Data["b"]; return !ok }},
		} {
			out := s.MustKubectl(t, "-n", ns, "patch", "configmap", "cm1", "--type", tc.typ, "-p", tc.patch)
			if strings.TrimSpace(out) != "configmap/cm1 patched" {
				t.Errorf("--type %s printed %q", tc.typ, out)
			}
			cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cm) {
				t.Errorf("after --type %s patch %s: data %v", tc.typ, tc.patch, cm.Data)
			}
		}
		// Strategic merge on a deployment merges containers by name.
		s.MustKubectl(t, "-n", ns, "patch", "deployment", "web", "-p",
			`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"registry.example/side:1"}]}}}}`)
		d, err := cs.AppsV1().Deployments(ns).Get(ctx(t), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var images []string
		for _, c := range d.Spec.Template.Spec.Containers {
			images = append(images, c.Name+"="+c.Image)
		}
		slices.Sort(images)
		if want := []string{"sidecar=registry.example/side:1", "web=registry.example/web:1.0"}; !slices.Equal(images, want) {
			t.Errorf("containers after strategic patch %v, want %v", images, want)
		}
	})

	t.Run("Apply", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "applied.yaml")
		write := func(data string) {
			content := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  labels:\n    via: apply\ndata:\n" + data
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("  a: \"1\"\n  b: \"2\"\n")
		if out := s.MustKubectl(t, "-n", ns, "apply", "--validate=false", "-f", file); strings.TrimSpace(out) != "configmap/applied created" {
			t.Errorf("first apply printed %q", out)
		}
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "applied", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
			t.Errorf("no %s annotation after apply", corev1.LastAppliedConfigAnnotation)
		}
		// Something another client added survives the next apply.
		cm.Data["external"] = "kept"
		if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx(t), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}

		write("  a: \"1\"\n  c: \"3\"\n")
		if out := s.MustKubectl(t, "-n", ns, "apply", "--validate=false", "-f", file); strings.TrimSpace(out) != "configmap/applied configured" {
			t.Errorf("second apply printed %q", out)
		}
		cm, err = cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "applied", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"a": "1", "c": "3", "external": "kept"}
		if fmt.Sprint(cm.Data) != fmt.Sprint(want) {
			t.Errorf("data after the second apply %v, want %v", cm.Data, want)
		}
		if out := s.MustKubectl(t, "-n", ns, "apply", "--validate=false", "-f", file); strings.TrimSpace(out) != "configmap/applied unchanged" {
			t.Errorf("third apply printed %q", out)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		out := s.MustKubectl(t, "-n", ns, "delete", "configmap", "from-file")
		if strings.TrimSpace(out) != `configmap "from-file" deleted from `+ns+` namespace` {
			t.Errorf("printed %q", out)
		}
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "from-file", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after kubectl delete: %v, want NotFound", err)
		}
		s.MustKubectl(t, "-n", ns, "delete", "-l", "e2e=kubectl", "configmaps")
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "cm1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after kubectl delete -l: %v, want NotFound", err)
		}
	})

	t.Run("DeleteWait", func(t *testing.T) { testKubectlDeleteWait(t, s, cs, ns) })
	t.Run("Watch", func(t *testing.T) { testKubectlWatch(t, s, cs) })

	t.Run("Version", func(t *testing.T) {
		sv, err := cs.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		out := s.MustKubectl(t, "version")
		if !strings.Contains(out, "Client Version: v1.") || !strings.Contains(out, "Server Version: "+sv.GitVersion) {
			t.Errorf("kubectl version printed:\n%s", out)
		}
		var v struct {
			ServerVersion struct{ GitVersion string } `json:"serverVersion"`
		}
		if err := json.Unmarshal([]byte(s.MustKubectl(t, "version", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		if v.ServerVersion.GitVersion != sv.GitVersion {
			t.Errorf("kubectl version -o json serverVersion %q, discovery says %q", v.ServerVersion.GitVersion, sv.GitVersion)
		}
	})
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func hasLineWithPrefix(out, prefix string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// hasLineWithFieldsPrefix reports whether a line of out starts with the
// given whitespace-separated fields.
func hasLineWithFieldsPrefix(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

func testKubectlDeleteWait(t *testing.T, s *framework.Server, cs kubernetes.Interface, ns string) {
	for _, name := range []string{"nowait", "wait"} {
		cm := configMap(name, nil)
		cm.Finalizers = []string{"e2e.havre.dev/hold"}
		mustCreateConfigMap(t, cs, ns, cm)
	}
	release := func(name string) {
		t.Helper()
		_, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx(t), name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}

	// --wait=false returns while the finalizer holds the object.
	s.MustKubectl(t, "-n", ns, "delete", "configmap", "nowait", "--wait=false")
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "nowait", metav1.GetOptions{})
	if err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("after delete --wait=false: %v, deletionTimestamp %v", err, cm.GetDeletionTimestamp())
	}
	release("nowait")

	// --wait (the default) blocks until the object is gone.
	cmdCtx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := s.KubectlCommand(cmdCtx, "-n", ns, "delete", "configmap", "wait", "--wait=true", "--timeout=60s")
	var out syncBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	framework.Eventually(t, 30*time.Second, func() (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx(t), "wait", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return cm.DeletionTimestamp != nil, nil
	}, "kubectl delete did not mark the object for deletion")
	select {
	case err := <-done:
		t.Fatalf("kubectl delete --wait returned while a finalizer held the object: %v\n%s", err, out.String())
	default:
	}
	release("wait")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kubectl delete --wait: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("kubectl delete --wait did not return within 60s of the finalizer's removal\n%s", out.String())
	}
	if !strings.Contains(out.String(), `configmap "wait" deleted`) {
		t.Errorf("kubectl delete --wait printed %q", out.String())
	}
}

// kubectlWatch runs `kubectl get -w` and streams its standard output.
type kubectlWatch struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	stderr syncBuffer
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startKubectlWatch(t *testing.T, s *framework.Server, consume func(io.Reader), args ...string) *kubectlWatch {
	t.Helper()
	cmdCtx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	kw := &kubectlWatch{cancel: cancel, done: make(chan error, 1)}
	cmd := s.KubectlCommand(cmdCtx, args...)
	cmd.Stderr = &kw.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go consume(stdout)
	go func() { kw.done <- cmd.Wait() }()
	t.Cleanup(kw.stop)
	return kw
}

// stop kills kubectl (it watches forever) and reaps it.
func (kw *kubectlWatch) stop() {
	kw.once.Do(func() {
		kw.cancel()
		<-kw.done
	})
}

func testKubectlWatch(t *testing.T, s *framework.Server, cs kubernetes.Interface) {
	wns := newNamespace(t, cs)
	mustCreateConfigMap(t, cs, wns, configMap("w-initial", map[string]string{"v": "0"}))

	t.Run("Name", func(t *testing.T) {
		lines := make(chan string, 100)
		startKubectlWatch(t, s, func(r io.Reader) {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}, "-n", wns, "get", "configmaps", "-w", "-o", "name")
		expectLine(t, lines, "configmap/w-initial")
		mustCreateConfigMap(t, cs, wns, configMap("w-name", nil))
		expectLine(t, lines, "configmap/w-name")
	})

	t.Run("Events", func(t *testing.T) {
		events := make(chan metav1.WatchEvent, 100)
		kw := startKubectlWatch(t, s, func(r io.Reader) {
			dec := json.NewDecoder(r)
			for {
				var ev metav1.WatchEvent
				if err := dec.Decode(&ev); err != nil {
					close(events)
					return
				}
				events <- ev
			}
		}, "-n", wns, "get", "configmaps", "-w", "--output-watch-events", "-o", "json")
		want := func(typ, name, v string) {
			t.Helper()
			deadline := time.After(eventTimeout)
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						t.Fatalf("kubectl get -w ended; stderr: %s", kw.stderr.String())
					}
					var cm corev1.ConfigMap
					if err := json.Unmarshal(ev.Object.Raw, &cm); err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(cm.Name, "w-") {
						continue // objects controllers put in every namespace
					}
					if ev.Type != typ || cm.Name != name || cm.Data["v"] != v {
						t.Fatalf("kubectl printed %s %s v=%q, want %s %s v=%q", ev.Type, cm.Name, cm.Data["v"], typ, name, v)
					}
					return
				case <-deadline:
					t.Fatalf("kubectl printed no %s %s within %v; stderr: %s", typ, name, eventTimeout, kw.stderr.String())
				}
			}
		}
		// The existing objects come first, as ADDED.
		for _, name := range []string{"w-initial", "w-name"} {
			v := ""
			if name == "w-initial" {
				v = "0"
			}
			want("ADDED", name, v)
		}
		mustCreateConfigMap(t, cs, wns, configMap("w-events", map[string]string{"v": "1"}))
		want("ADDED", "w-events", "1")
		if _, err := cs.CoreV1().ConfigMaps(wns).Patch(ctx(t), "w-events", types.MergePatchType, []byte(`{"data":{"v":"2"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		want("MODIFIED", "w-events", "2")
		if err := cs.CoreV1().ConfigMaps(wns).Delete(ctx(t), "w-events", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		want("DELETED", "w-events", "2")
	})
}

// expectLine waits for a line equal to want, skipping others.
func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(eventTimeout)
	var seen []string
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl output ended before %q; saw %q", want, seen)
			}
			if line == want {
				return
			}
			seen = append(seen, line)
		case <-deadline:
			t.Fatalf("kubectl printed no %q within %v; saw %q", want, eventTimeout, seen)
		}
	}
}

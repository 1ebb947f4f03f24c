package server

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/controller/crd"
	"github.com/havre/havre/internal/volume/snapshotapi"
)

// startAPIServer runs an API server in-process with the snapshot API's
// post-start hook and the crd controllers, and returns its loopback config.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	srv, _ := runTestServer(t, t.TempDir(), nil, func(c *apiserver.Config) {
		c.PostStart = []func(context.Context, *rest.Config) error{startSnapshotAPI}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := srv.LoopbackConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := crd.New(cfg, dyn)
	if err != nil {
		t.Fatal(err)
	}
	go cc.Run(ctx)
	return cfg
}

// TestSnapshotAPI: the server installs upstream's definitions, serves
// them, creates the default class, and validates objects as upstream's
// own CEL test cases (hack/cel-tests of the client module) expect.
func TestSnapshotAPI(t *testing.T) {
	cfg := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	snaps := snapshotclient.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)

	// The installed definitions are upstream's.
	want, err := snapshotapi.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Group != w.Spec.Group || got.Spec.Scope != w.Spec.Scope || !apiequality.Semantic.DeepEqual(got.Spec.Names, w.Spec.Names) ||
			!apiequality.Semantic.DeepEqual(got.Spec.Versions, w.Spec.Versions) {
			t.Errorf("%s: installed spec differs from upstream's", w.Name)
		}
		for _, k := range []string{"api-approved.kubernetes.io", snapshotapi.AnnBundleVersion} {
			if got.Annotations[k] != w.Annotations[k] {
				t.Errorf("%s: annotation %s = %q, want %q", w.Name, k, got.Annotations[k], w.Annotations[k])
			}
		}
	}

	// The default class appears once the definitions are established.
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := snaps.SnapshotV1().VolumeSnapshotClasses().Get(ctx, snapshotapi.DefaultClass, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("default VolumeSnapshotClass: %v", err)
	}

	// A second start changes nothing; an older bundle's definition is
	// updated; one without the annotation (someone else's) is left alone.
	if err := startSnapshotAPI(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	crds := ext.ApiextensionsV1().CustomResourceDefinitions()
	const name = "volumesnapshotclasses.snapshot.storage.k8s.io"
	// The definitions' controller writes their status meanwhile: the
	// test's own writes are read, changed and written again on a conflict.
	rewrite := func(change func(*apiextensionsv1.CustomResourceDefinition)) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(crd)
			_, err = crds.Update(ctx, crd, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rewrite(func(old *apiextensionsv1.CustomResourceDefinition) {
		old.Annotations[snapshotapi.AnnBundleVersion] = "v8.0.0"
		old.Spec.Names.ShortNames = []string{"old"}
	})
	if err := snapshotapi.InstallDefinitions(ctx, ext); err != nil {
		t.Fatal(err)
	}
	got, err := crds.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[snapshotapi.AnnBundleVersion] != snapshotapi.BundleVersion || strings.Join(got.Spec.Names.ShortNames, ",") != "vsclass,vsclasses" {
		t.Errorf("older definition not updated: %v %v", got.Annotations, got.Spec.Names.ShortNames)
	}
	rewrite(func(mine *apiextensionsv1.CustomResourceDefinition) {
		delete(mine.Annotations, snapshotapi.AnnBundleVersion)
		mine.Spec.Names.ShortNames = []string{"mine"}
	})
	if err := snapshotapi.InstallDefinitions(ctx, ext); err != nil {
		t.Fatal(err)
	}
	if got, _ := crds.Get(ctx, name, metav1.GetOptions{}); strings.Join(got.Spec.Names.ShortNames, ",") != "mine" {
		t.Errorf("someone else's definition was changed: %v", got.Spec.Names.ShortNames)
	}

	// Upstream's CEL test cases.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", snapshotapi.Module).Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "hack", "cel-tests")
	ran := 0
	for _, kind := range []string{"volumesnapshot", "volumesnapshotcontent"} {
		files, err := filepath.Glob(filepath.Join(root, kind, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("cel tests of %s: %v %v", kind, files, err)
		}
		for _, f := range files {
			switch {
			case strings.HasSuffix(f, ".post.yaml"):
				continue
			case strings.HasSuffix(f, ".pre.yaml"):
				post := strings.TrimSuffix(f, ".pre.yaml") + ".post.yaml"
				celTransition(ctx, t, dyn, f, post, expected(t, post+".tx_err"))
			default:
				celCreate(ctx, t, dyn, f, expected(t, f+".err"))
			}
			ran++
		}
	}
	if ran < 20 {
		t.Errorf("only %d CEL cases ran", ran)
	}
}

func expected(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}

func resourceFor(dyn dynamic.Interface, u *unstructured.Unstructured) dynamic.ResourceInterface {
	plural := strings.ToLower(u.GetKind()) + "s"
	gvr := schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: plural}
	if u.GetKind() == "VolumeSnapshot" {
		if u.GetNamespace() == "" {
			u.SetNamespace("default")
		}
		return dyn.Resource(gvr).Namespace(u.GetNamespace())
	}
	return dyn.Resource(gvr)
}

// check reports whether err is what a case expects: no error, or one that
// contains the expected message.
func check(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want success", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: succeeded, want %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		// Known deviation: kube-apiserver names a CEL rule's failure by
		// the schema type (`Invalid value: "string": ...`), Havre's API
		// server by the value; the rule's message must still be there.
		if msg, ok := strings.CutPrefix(want, `Invalid value: "string": `); ok && strings.Contains(err.Error(), msg) {
			t.Logf("%s: %v (kube-apiserver: %q)", what, err, want)
			return
		}
		t.Errorf("%s: %v, want %q", what, err, want)
	}
}

func celCreate(ctx context.Context, t *testing.T, dyn dynamic.Interface, path, want string) {
	u := readObject(t, path)
	res := resourceFor(dyn, u)
	_, err := res.Create(ctx, u, metav1.CreateOptions{})
	check(t, filepath.Base(path), err, want)
	if err == nil {
		if err := res.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func celTransition(ctx context.Context, t *testing.T, dyn dynamic.Interface, pre, post, want string) {
	u := readObject(t, pre)
	res := resourceFor(dyn, u)
	created, err := res.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		t.Errorf("%s: %v", filepath.Base(pre), err)
		return
	}
	next := readObject(t, post)
	resourceFor(dyn, next)
	next.SetResourceVersion(created.GetResourceVersion())
	_, err = res.Update(ctx, next, metav1.UpdateOptions{})
	check(t, filepath.Base(pre)+" -> "+filepath.Base(post), err, want)
	if err := res.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

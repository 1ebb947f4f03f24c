package api_test

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var (
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// TestDynamicClient drives the API with unstructured objects and JSON bodies,
// as kubectl and helm do, including the three patch types.
func TestDynamicClient(t *testing.T) {
	s := startServer(t)
	ns := newNamespace(t, s.Clientset())
	dyn := s.Dynamic()
	cms := dyn.Resource(configMapsGVR).Namespace(ns)

	t.Run("CreateGet", func(t *testing.T) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "ConfigMap",
			"metadata":   map[string]any{"name": "dyn", "labels": map[string]any{"a": "b"}},
			"data":       map[string]any{"k": "v"},
		}}
		created, err := cms.Create(ctx(t), obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.GetKind() != "ConfigMap" || created.GetAPIVersion() != "v1" {
			t.Errorf("created object is %s %s", created.GetAPIVersion(), created.GetKind())
		}
		if created.GetUID() == "" || created.GetResourceVersion() == "" || created.GetNamespace() != ns {
			t.Errorf("created metadata: uid %q rv %q ns %q", created.GetUID(), created.GetResourceVersion(), created.GetNamespace())
		}
		got, err := cms.Get(ctx(t), "dyn", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v, _, _ := unstructured.NestedString(got.Object, "data", "k"); v != "v" {
			t.Errorf("data.k = %q", v)
		}
		list, err := cms.List(ctx(t), metav1.ListOptions{LabelSelector: "a=b"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].GetName() != "dyn" || list.GetKind() != "ConfigMapList" {
			t.Errorf("list: kind %q, %d items", list.GetKind(), len(list.Items))
		}
	})

	t.Run("Patches", func(t *testing.T) {
		for i, tc := range []struct {
			name  string
			pt    types.PatchType
			patch string
			want  map[string]any
		}{
			{"json patch", types.JSONPatchType,
				`[{"op":"replace","path":"/data/a","value":"2"},{"op":"add","path":"/data/c","value":"3"},{"op":"remove","path":"/data/b"}]`,
				map[string]any{"a": "2", "c": "3"}},
			{"json patch test op", types.JSONPatchType,
				`[{"op":"test","path":"/data/a","value":"1"},{"op":"add","path":"/data/t","value":"ok"}]`,
				map[string]any{"a": "1", "b": "1", "t": "ok"}},
			{"merge patch", types.MergePatchType,
				`{"data":{"a":"2","b":null,"m":"x"}}`,
				map[string]any{"a": "2", "m": "x"}},
			{"strategic merge patch", types.StrategicMergePatchType,
				`{"data":{"a":"3","b":null}}`,
				map[string]any{"a": "3"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("patch-%d", i)
				obj := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "v1", "kind": "ConfigMap",
					"metadata": map[string]any{"name": name},
					"data":     map[string]any{"a": "1", "b": "1"},
				}}
				created, err := cms.Create(ctx(t), obj, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				patched, err := cms.Patch(ctx(t), name, tc.pt, []byte(tc.patch), metav1.PatchOptions{})
				if err != nil {
					t.Fatal(err)
				}
				data, _, _ := unstructured.NestedMap(patched.Object, "data")
				if !equalMaps(data, tc.want) {
					t.Errorf("data after patch %v, want %v", data, tc.want)
				}
				if patched.GetResourceVersion() == created.GetResourceVersion() {
					t.Error("patch did not change resourceVersion")
				}
				got, err := cms.Get(ctx(t), name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				data, _, _ = unstructured.NestedMap(got.Object, "data")
				if !equalMaps(data, tc.want) {
					t.Errorf("stored data %v, want %v", data, tc.want)
				}
				if err := cms.Delete(ctx(t), name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("FailedJSONPatchTest", func(t *testing.T) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "jp-test"},
			"data":     map[string]any{"a": "1"},
		}}
		if _, err := cms.Create(ctx(t), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A failing "test" operation rejects the whole patch: 422 in
		// kube-apiserver.
		_, err := cms.Patch(ctx(t), "jp-test", types.JSONPatchType,
			[]byte(`[{"op":"add","path":"/data/x","value":"y"},{"op":"test","path":"/data/a","value":"2"}]`), metav1.PatchOptions{})
		expectStatus(t, err, 422, metav1.StatusReasonInvalid)
		got, err := cms.Get(ctx(t), "jp-test", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, found, _ := unstructured.NestedString(got.Object, "data", "x"); found {
			t.Error("a rejected JSON patch was partly applied")
		}
	})

	t.Run("StrategicMergeMergesListsByKey", func(t *testing.T) {
		deploys := dyn.Resource(deploymentsGVR).Namespace(ns)
		for _, tc := range []struct {
			pt             types.PatchType
			wantContainers map[string]string // name -> image
		}{
			// Strategic merge merges containers by name ...
			{types.StrategicMergePatchType, map[string]string{"a": "img-a:1", "b": "img-b:2"}},
			// ... a JSON merge patch replaces the list.
			{types.MergePatchType, map[string]string{"b": "img-b:2"}},
		} {
			name := "smp"
			if tc.pt == types.MergePatchType {
				name = "merge"
			}
			if _, err := deploys.Create(ctx(t), unstructuredDeployment(name), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			patch := `{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"img-b:2"}]}}}}`
			patched, err := deploys.Patch(ctx(t), name, tc.pt, []byte(patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatalf("%s: %v", tc.pt, err)
			}
			containers, _, _ := unstructured.NestedSlice(patched.Object, "spec", "template", "spec", "containers")
			got := map[string]string{}
			for _, c := range containers {
				m := c.(map[string]any)
				got[m["name"].(string)] = m["image"].(string)
			}
			if len(got) != len(tc.wantContainers) {
				t.Errorf("%s: containers %v, want %v", tc.pt, got, tc.wantContainers)
				continue
			}
			for k, v := range tc.wantContainers {
				if got[k] != v {
					t.Errorf("%s: containers %v, want %v", tc.pt, got, tc.wantContainers)
				}
			}
			if gen := patched.GetGeneration(); gen != 2 {
				t.Errorf("%s: generation %d after a template patch, want 2", tc.pt, gen)
			}
		}
	})
}

func unstructuredDeployment(name string) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "a", "image": "img-a:1"},
					map[string]any{"name": "b", "image": "img-b:1"},
				}},
			},
		},
	}}
}

func equalMaps(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

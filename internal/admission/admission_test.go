package admission

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/kubernetes/scheme"
)

// fakePlugin records its calls in a shared log and may fail.
type fakePlugin struct {
	*admission.Handler
	name string
	log  *[]string
	fail error
}

func (p *fakePlugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	*p.log = append(*p.log, "admit "+p.name)
	return p.fail
}

type validatingPlugin struct{ *fakePlugin }

func (p validatingPlugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	*p.log = append(*p.log, "validate "+p.name)
	return p.fail
}

type mutatingOnly struct{ *fakePlugin }

func TestChain(t *testing.T) {
	denied := errors.New("denied")
	tests := []struct {
		name         string
		op           admission.Operation
		build        func(log *[]string) []Plugin
		wantAdmit    []string
		wantValidate []string
		wantErr      error
	}{
		{
			name: "in registration order, each kind of plugin in its phase",
			op:   admission.Create,
			build: func(log *[]string) []Plugin {
				return []Plugin{
					{"m1", mutatingOnly{&fakePlugin{Handler: admission.NewHandler(admission.Create), name: "m1", log: log}}},
					{"v1", validatingPlugin{&fakePlugin{Handler: admission.NewHandler(admission.Create), name: "v1", log: log}}},
					{"m2", mutatingOnly{&fakePlugin{Handler: admission.NewHandler(admission.Create), name: "m2", log: log}}},
				}
			},
			wantAdmit:    []string{"admit m1", "admit v1", "admit m2"},
			wantValidate: []string{"validate v1"},
		},
		{
			name: "plugins that do not handle the operation are skipped",
			op:   admission.Delete,
			build: func(log *[]string) []Plugin {
				return []Plugin{
					{"m1", mutatingOnly{&fakePlugin{Handler: admission.NewHandler(admission.Create), name: "m1", log: log}}},
					{"v1", validatingPlugin{&fakePlugin{Handler: admission.NewHandler(admission.Delete), name: "v1", log: log}}},
				}
			},
			wantAdmit:    []string{"admit v1"},
			wantValidate: []string{"validate v1"},
		},
		{
			name: "the first error stops the chain",
			op:   admission.Update,
			build: func(log *[]string) []Plugin {
				return []Plugin{
					{"v1", validatingPlugin{&fakePlugin{Handler: admission.NewHandler(admission.Update), name: "v1", log: log, fail: denied}}},
					{"v2", validatingPlugin{&fakePlugin{Handler: admission.NewHandler(admission.Update), name: "v2", log: log}}},
				}
			},
			wantAdmit:    []string{"admit v1"},
			wantValidate: []string{"validate v1"},
			wantErr:      denied,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			c := NewChain()
			for _, p := range tt.build(&log) {
				c.Register(p.Name, p.Interface)
			}
			a := admission.NewAttributesRecord(nil, nil, schema.GroupVersionKind{}, "", "", schema.GroupVersionResource{}, "", tt.op, nil, false, nil)
			o := NewObjectInterfaces(scheme.Scheme)
			if err := c.Admit(context.Background(), a, o); !errors.Is(err, tt.wantErr) {
				t.Errorf("Admit: %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(log, tt.wantAdmit) {
				t.Errorf("Admit called %v, want %v", log, tt.wantAdmit)
			}
			log = nil
			if err := c.Validate(context.Background(), a, o); !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate: %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(log, tt.wantValidate) {
				t.Errorf("Validate called %v, want %v", log, tt.wantValidate)
			}
		})
	}
	if (*Chain)(nil).Handles(admission.Create) {
		t.Error("a nil chain handles nothing")
	}
}

func TestObjectInterfaces(t *testing.T) {
	o := NewObjectInterfaces(scheme.Scheme)
	gvk := corev1.SchemeGroupVersion.WithKind("ConfigMap")
	in := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"k": "v"}}

	// The admission library converts a served object to the kind a
	// webhook asks for: a copy for Havre's single versions.
	out, err := admission.ConvertToGVK(in, gvk, o)
	if err != nil {
		t.Fatal(err)
	}
	cm := out.(*corev1.ConfigMap)
	if cm == in || cm.Data["k"] != "v" || cm.Kind != "ConfigMap" {
		t.Errorf("converted %+v", cm)
	}
	// and back into the server's object, in place.
	cm.Data["k"] = "changed"
	if err := o.GetObjectConvertor().Convert(cm, in, nil); err != nil {
		t.Fatal(err)
	}
	if in.Data["k"] != "changed" {
		t.Errorf("copy back: %v", in.Data)
	}

	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Thing", "metadata": map[string]any{"name": "x"}}}
	same, err := admission.ConvertToGVK(u, u.GroupVersionKind(), o)
	if err != nil || same != u {
		t.Errorf("custom resource of the asked kind: %v, %v", same, err)
	}
	into := &unstructured.Unstructured{}
	if err := o.GetObjectConvertor().Convert(u, into, nil); err != nil || into.GetName() != "x" {
		t.Errorf("unstructured copy: %v, %v", into, err)
	}

	gvr := corev1.SchemeGroupVersion.WithResource("configmaps")
	o.RegisterKind(gvr, "", gvk)
	if got := o.GetEquivalentResourceMapper().KindFor(gvr, ""); got != gvk {
		t.Errorf("KindFor %v", got)
	}
}

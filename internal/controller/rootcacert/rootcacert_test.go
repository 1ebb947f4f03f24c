package rootcacert

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func configMap(data map[string]string, annotations map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "a", Annotations: annotations}, Data: data}
}

func TestSync(t *testing.T) {
	described := map[string]string{DescriptionAnnotation: Description}
	tests := []struct {
		name      string
		existing  *corev1.ConfigMap
		createErr error
		want      string // "create", "update" or ""
		wantErr   bool
	}{
		{name: "missing", want: "create"},
		{name: "current", existing: configMap(map[string]string{DataKey: ca}, described)},
		{name: "other description kept", existing: configMap(map[string]string{DataKey: ca}, map[string]string{DescriptionAnnotation: "mine"})},
		{name: "wrong CA", existing: configMap(map[string]string{DataKey: "old"}, described), want: "update"},
		{name: "extra key", existing: configMap(map[string]string{DataKey: ca, "x": "y"}, described), want: "update"},
		{name: "no description", existing: configMap(map[string]string{DataKey: ca}, nil), want: "update"},
		{name: "namespace gone", createErr: apierrors.NewNotFound(corev1.Resource("namespaces"), "a"), want: "create"},
		{name: "namespace terminating", want: "create", createErr: &apierrors.StatusError{ErrStatus: metav1.Status{Code: 403,
			Reason: metav1.StatusReasonForbidden, Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}}}}},
		{name: "created meanwhile is retried", createErr: apierrors.NewAlreadyExists(corev1.Resource("configmaps"), ConfigMapName), want: "create", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.existing != nil {
				objs = append(objs, tt.existing)
			}
			client := fake.NewClientset(objs...)
			if tt.createErr != nil {
				client.PrependReactor("create", "configmaps", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.createErr
				})
			}
			factory := informers.NewSharedInformerFactory(client, 0)
			p, err := New(client, factory, []byte(ca))
			if err != nil {
				t.Fatal(err)
			}
			if tt.existing != nil {
				_ = factory.Core().V1().ConfigMaps().Informer().GetStore().Add(tt.existing)
			}
			client.ClearActions()
			err = p.sync(context.Background(), "a")
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync: %v, want error %v", err, tt.wantErr)
			}
			var got string
			var written *corev1.ConfigMap
			for _, a := range client.Actions() {
				if a.GetVerb() == "create" || a.GetVerb() == "update" {
					got, written = a.GetVerb(), a.(clienttesting.CreateAction).GetObject().(*corev1.ConfigMap)
				}
			}
			if got != tt.want {
				t.Fatalf("wrote %q, want %q", got, tt.want)
			}
			if written != nil {
				if len(written.Data) != 1 || written.Data[DataKey] != ca || written.Annotations[DescriptionAnnotation] != Description {
					t.Errorf("wrote data %v annotations %v", written.Data, written.Annotations)
				}
			}
		})
	}
}

func TestNewNeedsCA(t *testing.T) {
	client := fake.NewClientset()
	if _, err := New(client, informers.NewSharedInformerFactory(client, 0), nil); err == nil {
		t.Fatal("New without a CA: no error")
	}
}

// TestPublishes runs the publisher: a new namespace gets the ConfigMap, and
// a deleted or edited one is put back.
func TestPublishes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	p, err := New(client, factory, []byte(ca))
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	// Informers stop when ctx is done; Shutdown waits for them.
	defer func() { cancel(); factory.Shutdown() }()
	go p.Run(ctx, 1)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCA := func(what string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			cm, err := client.CoreV1().ConfigMaps("team").Get(ctx, ConfigMapName, metav1.GetOptions{})
			return err == nil && cm.Data[DataKey] == ca, nil
		})
		if err != nil {
			t.Fatalf("%s: no current %s in team: %v", what, ConfigMapName, err)
		}
	}
	waitCA("new namespace")

	cm, err := client.CoreV1().ConfigMaps("team").Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[DataKey] = "tampered"
	if _, err := client.CoreV1().ConfigMaps("team").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCA("after an edit")

	if err := client.CoreV1().ConfigMaps("team").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCA("after a delete")
}

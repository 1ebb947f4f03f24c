package serviceaccount

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

func namespace(name string, phase corev1.NamespacePhase) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: phase}}
}

func TestSync(t *testing.T) {
	tests := []struct {
		name       string
		objects    []runtime.Object
		createErr  error
		wantCreate bool
		wantErr    bool
	}{
		{name: "active namespace without account", objects: []runtime.Object{namespace("a", corev1.NamespaceActive)}, wantCreate: true},
		{name: "account exists", objects: []runtime.Object{namespace("a", corev1.NamespaceActive),
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "a"}}}},
		{name: "other accounts do not count", objects: []runtime.Object{namespace("a", corev1.NamespaceActive),
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "a"}}}, wantCreate: true},
		{name: "terminating namespace", objects: []runtime.Object{namespace("a", corev1.NamespaceTerminating)}},
		{name: "namespace gone"},
		{name: "created meanwhile", objects: []runtime.Object{namespace("a", corev1.NamespaceActive)},
			createErr: apierrors.NewAlreadyExists(corev1.Resource("serviceaccounts"), "default"), wantCreate: true},
		{name: "namespace started terminating", objects: []runtime.Object{namespace("a", corev1.NamespaceActive)},
			createErr: &apierrors.StatusError{ErrStatus: metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden,
				Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}}}}, wantCreate: true},
		{name: "create fails", objects: []runtime.Object{namespace("a", corev1.NamespaceActive)},
			createErr: apierrors.NewInternalError(context.DeadlineExceeded), wantCreate: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			if tt.createErr != nil {
				client.PrependReactor("create", "serviceaccounts", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.createErr
				})
			}
			factory := informers.NewSharedInformerFactory(client, 0)
			c, err := New(client, factory)
			if err != nil {
				t.Fatal(err)
			}
			for _, obj := range tt.objects {
				switch o := obj.(type) {
				case *corev1.Namespace:
					_ = factory.Core().V1().Namespaces().Informer().GetStore().Add(o)
				case *corev1.ServiceAccount:
					_ = factory.Core().V1().ServiceAccounts().Informer().GetStore().Add(o)
				}
			}
			client.ClearActions()
			err = c.sync(context.Background(), "a")
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync: %v, want error %v", err, tt.wantErr)
			}
			var created []string
			for _, a := range client.Actions() {
				if a.GetVerb() == "create" && a.GetResource().Resource == "serviceaccounts" {
					sa := a.(clienttesting.CreateAction).GetObject().(*corev1.ServiceAccount)
					created = append(created, sa.Namespace+"/"+sa.Name)
				}
			}
			if tt.wantCreate != (len(created) == 1) || len(created) > 1 {
				t.Fatalf("created %v, want a create: %v", created, tt.wantCreate)
			}
			if tt.wantCreate && created[0] != "a/default" {
				t.Errorf("created %s, want a/default", created[0])
			}
		})
	}
}

// TestRecreatesDeleted runs the controller: a new namespace gets its
// account, and a deleted account comes back.
func TestRecreatesDeleted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(client, factory)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	// Informers stop when ctx is done; Shutdown waits for them.
	defer func() { cancel(); factory.Shutdown() }()
	go c.Run(ctx, 1)

	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("team", corev1.NamespaceActive), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAccount := func() {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("team").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("no default service account in team: %v", err)
		}
	}
	waitAccount()
	if err := client.CoreV1().ServiceAccounts("team").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAccount()
}

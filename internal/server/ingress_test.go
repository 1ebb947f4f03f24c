package server

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestIngressClassCreatedWhenMissing(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	if err := createIngressClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	c, err := cs.NetworkingV1().IngressClasses().Get(ctx, "havre", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Spec.Controller != "havre.io/ingress" || c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
		t.Errorf("class: %+v", c)
	}
	// A user's edit stays.
	c.Annotations = nil
	if _, err := cs.NetworkingV1().IngressClasses().Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := createIngressClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if c, _ := cs.NetworkingV1().IngressClasses().Get(ctx, "havre", metav1.GetOptions{}); len(c.Annotations) != 0 {
		t.Errorf("the user's edit was undone: %v", c.Annotations)
	}
}

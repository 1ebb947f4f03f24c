package server

import (
	"context"
	"fmt"
	"log/slog"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/network/ingress/routes"
)

// defaultIngressClass is the IngressClass of the nodes' ingress proxies,
// made the default.
func defaultIngressClass() *networkingv1.IngressClass {
	return &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        routes.IngressClassName,
			Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"},
		},
		Spec: networkingv1.IngressClassSpec{Controller: routes.IngressController},
	}
}

// ensureIngressClass is an API server post-start hook: it creates the
// IngressClass havre when none of its name exists (a user's edits, or
// its removal of the default annotation, are left as they are).
func ensureIngressClass(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return createIngressClass(ctx, cs)
}

func createIngressClass(ctx context.Context, cs kubernetes.Interface) error {
	classes := cs.NetworkingV1().IngressClasses()
	if _, err := classes.Get(ctx, routes.IngressClassName, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading IngressClass %s: %w", routes.IngressClassName, err)
	}
	_, err := classes.Create(ctx, defaultIngressClass(), metav1.CreateOptions{FieldManager: "havre-server"})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating IngressClass %s: %w", routes.IngressClassName, err)
	}
	slog.Info("created the default IngressClass", "name", routes.IngressClassName, "controller", routes.IngressController)
	return nil
}

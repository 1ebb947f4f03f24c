package server

import (
	"context"
	"fmt"
	"log/slog"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/havre/havre/internal/network/gateway/gatewayapi"
)

// startGatewayAPI is the API server's post-start hook that installs
// Gateway API (upstream's standard-channel CustomResourceDefinitions and
// its ValidatingAdmissionPolicy) and, once the crd controller has
// established them, the GatewayClass havre. It returns once the manifests
// are written; the class is created in the background for as long as ctx
// lasts.
func startGatewayAPI(ctx context.Context, cfg *rest.Config) error {
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	gw, err := gatewayclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := gatewayapi.InstallDefinitions(ctx, ext, kube); err != nil {
		return fmt.Errorf("gateway API: %w", err)
	}
	go func() {
		if err := gatewayapi.EnsureGatewayClass(ctx, gw); err != nil && ctx.Err() == nil {
			slog.Error("gateway API", "err", err)
		}
	}()
	return nil
}

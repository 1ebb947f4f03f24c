package server

import (
	"context"

	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/admission/webhook"
)

// admissionPlugins are the server's admission plugins in kube-apiserver's
// order (RecommendedPluginOrder): mutating plugins run in this order, then
// validating ones. Havre's built-in pod admission steps (Priority,
// DefaultTolerationSeconds, ServiceAccount, storage defaults) run before
// them, in internal/apiserver.
var admissionPlugins = []admission.Factory{
	webhook.Mutating,
	// ValidatingAdmissionPolicy goes here.
	webhook.Validating,
}

// startAdmission is the API server's first post-start hook: it builds the
// admission plugins, syncs their informers and puts them in chain.
func startAdmission(chain *admission.Chain) func(ctx context.Context, cfg *rest.Config) error {
	return func(ctx context.Context, cfg *rest.Config) error {
		return admission.Start(ctx, chain, cfg, admissionPlugins, admission.Options{})
	}
}

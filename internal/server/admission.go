package server

import (
	"context"

	"k8s.io/client-go/rest"
	psaapi "k8s.io/pod-security-admission/admission/api"

	"github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/admission/podsecurity"
	"github.com/havre/havre/internal/admission/policy"
	"github.com/havre/havre/internal/admission/webhook"
	"github.com/havre/havre/internal/auth"
)

// admissionPlugins are the server's admission plugins in kube-apiserver's
// order (RecommendedPluginOrder): mutating plugins run in this order, then
// validating ones. Havre's built-in pod admission steps (Priority,
// DefaultTolerationSeconds, ServiceAccount, storage defaults) run before
// them, in internal/apiserver. podSecurity configures PodSecurity.
func admissionPlugins(podSecurity *psaapi.PodSecurityConfiguration) []admission.Factory {
	return []admission.Factory{
		podsecurity.Factory(podSecurity), // PodSecurity (validating only)
		policy.MutatingFactory,           // MutatingAdmissionPolicy
		webhook.Mutating,
		policy.Factory, // ValidatingAdmissionPolicy
		webhook.Validating,
	}
}

// startAdmission is the API server's first post-start hook: it builds the
// admission plugins, syncs their informers and puts them in chain. authz
// answers the policies' CEL authorizer.
func startAdmission(chain *admission.Chain, authz auth.Authorizer, plugins []admission.Factory) func(ctx context.Context, cfg *rest.Config) error {
	return func(ctx context.Context, cfg *rest.Config) error {
		return admission.Start(ctx, chain, cfg, plugins, admission.Options{Authorizer: policy.Authorizer(authz)})
	}
}

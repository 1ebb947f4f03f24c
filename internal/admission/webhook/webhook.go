// Package webhook provides the admission webhook plugins (upstream's
// MutatingAdmissionWebhook and ValidatingAdmissionWebhook from
// k8s.io/apiserver) as factories of the admission chain.
package webhook

import (
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/mutating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/validating"

	hadmission "github.com/havre/havre/internal/admission"
)

// Mutating is the MutatingAdmissionWebhook plugin: it calls the webhooks
// of MutatingWebhookConfigurations, in order, and applies their patches.
var Mutating = hadmission.Factory{
	Name: mutating.PluginName,
	New: func() (admission.Interface, error) {
		return mutating.NewMutatingWebhook(nil)
	},
}

// Validating is the ValidatingAdmissionWebhook plugin: it calls the
// webhooks of ValidatingWebhookConfigurations, in parallel.
var Validating = hadmission.Factory{
	Name: validating.PluginName,
	New: func() (admission.Interface, error) {
		return validating.NewValidatingAdmissionWebhook(nil)
	},
}

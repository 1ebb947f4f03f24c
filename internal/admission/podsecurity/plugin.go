package podsecurity

import (
	"context"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	psadmission "k8s.io/pod-security-admission/admission"
	psaapi "k8s.io/pod-security-admission/admission/api"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/metrics"
	"k8s.io/pod-security-admission/policy"

	hadmission "github.com/havre/havre/internal/admission"
)

// Factory returns the PodSecurity plugin of the admission chain with the
// given configuration (see LoadConfiguration).
func Factory(cfg *psaapi.PodSecurityConfiguration) hadmission.Factory {
	return hadmission.Factory{
		Name: PluginName,
		New:  func() (admission.Interface, error) { return newPlugin(cfg) },
	}
}

// Plugin is a validating admission plugin: it evaluates pods, the pod
// templates of workload resources (warn and audit only) and namespaces'
// policy labels on create and update.
type Plugin struct {
	*admission.Handler
	client     kubernetes.Interface
	namespaces corelisters.NamespaceLister
	pods       corelisters.PodLister
	delegate   *psadmission.Admission
}

var (
	_ admission.ValidationInterface     = (*Plugin)(nil)
	_ admission.InitializationValidator = (*Plugin)(nil)
)

func newPlugin(cfg *psaapi.PodSecurityConfiguration) (*Plugin, error) {
	if cfg == nil {
		return nil, errors.New("no configuration")
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return nil, fmt.Errorf("pod security checks: %w", err)
	}
	return &Plugin{
		Handler: admission.NewHandler(admission.Create, admission.Update),
		delegate: &psadmission.Admission{
			Configuration:    cfg,
			Evaluator:        evaluator,
			Metrics:          noMetrics{},
			PodSpecExtractor: psadmission.DefaultPodSpecExtractor{},
		},
	}, nil
}

// SetExternalKubeClientSet implements initializer.WantsExternalKubeClientSet:
// namespaces not yet in the informer's cache are read with it.
func (p *Plugin) SetExternalKubeClientSet(c kubernetes.Interface) { p.client = c }

// SetExternalKubeInformerFactory implements
// initializer.WantsExternalKubeInformerFactory: namespaces and pods (whose
// violations are listed when a namespace's enforce level is raised) come
// from informers.
func (p *Plugin) SetExternalKubeInformerFactory(f informers.SharedInformerFactory) {
	ns := f.Core().V1().Namespaces()
	pods := f.Core().V1().Pods()
	p.namespaces = ns.Lister()
	p.pods = pods.Lister()
	p.SetReadyFunc(func() bool { return ns.Informer().HasSynced() && pods.Informer().HasSynced() })
}

// ValidateInitialization completes the upstream admission logic once the
// clients are set.
func (p *Plugin) ValidateInitialization() error {
	if p.client == nil || p.namespaces == nil || p.pods == nil {
		return errors.New("missing client or informers")
	}
	p.delegate.NamespaceGetter = psadmission.NamespaceGetterFromListerAndClient(p.namespaces, p.client)
	p.delegate.PodLister = psadmission.PodListerFromInformer(p.pods)
	if err := p.delegate.CompleteConfiguration(); err != nil {
		return err
	}
	return p.delegate.ValidateConfiguration()
}

// Validate evaluates the request with upstream's admission logic. Its
// warnings become the response's Warning headers; a refusal is returned
// as upstream's Forbidden (or Invalid, for bad namespace labels) status.
// Audit annotations are dropped: Havre has no audit log yet.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	gr := a.GetResource().GroupResource()
	if gr != namespacesResource && gr != podsResource && !p.delegate.PodSpecExtractor.HasPodSpec(gr) {
		return nil
	}
	resp := p.delegate.Validate(ctx, attributes{a})
	for _, w := range resp.Warnings {
		warning.AddWarning(ctx, "", w)
	}
	if resp.Allowed {
		return nil
	}
	err := admission.NewForbidden(a, errors.New("Not allowed by PodSecurity")).(*apierrors.StatusError)
	if r := resp.Result; r != nil {
		if r.Message != "" {
			err.ErrStatus.Message = r.Message
		}
		if r.Reason != "" {
			err.ErrStatus.Reason = r.Reason
		}
		if r.Details != nil {
			err.ErrStatus.Details = r.Details
		}
		if r.Code != 0 {
			err.ErrStatus.Code = r.Code
		}
	}
	return err
}

var (
	namespacesResource = corev1.Resource("namespaces")
	podsResource       = corev1.Resource("pods")
)

// attributes adapts k8s.io/apiserver's admission attributes to the
// library's.
type attributes struct{ admission.Attributes }

func (a attributes) GetOperation() admissionv1.Operation {
	return admissionv1.Operation(a.Attributes.GetOperation())
}

func (a attributes) GetObject() (runtime.Object, error)    { return a.Attributes.GetObject(), nil }
func (a attributes) GetOldObject() (runtime.Object, error) { return a.Attributes.GetOldObject(), nil }
func (a attributes) GetUserName() string                   { return a.GetUserInfo().GetName() }

var _ api.Attributes = attributes{}

// noMetrics drops the library's metrics: Havre serves no Prometheus
// registry yet.
type noMetrics struct{}

func (noMetrics) RecordEvaluation(metrics.Decision, api.LevelVersion, metrics.Mode, api.Attributes) {}
func (noMetrics) RecordExemption(api.Attributes)                                                    {}
func (noMetrics) RecordError(bool, api.Attributes)                                                  {}

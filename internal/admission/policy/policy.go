// Package policy is the ValidatingAdmissionPolicy admission plugin:
// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies and their
// bindings, evaluated with k8s.io/apiserver's library (CEL validations,
// match constraints and conditions, variables, params from any kind,
// validation actions Deny, Warn and Audit, failure policies).
//
// The plugin is built before the API server runs and started by a
// post-start hook (Start) over the server's loopback config: its informers
// (policies, bindings, namespaces, params) are its own. Until it has
// started and its informers have synced, a request waits, as kube-apiserver
// makes it wait, and is then forbidden.
//
// It must never write: it only reads policies, bindings and params.
package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/havre/havre/internal/auth"
)

// PluginName is the plugin's name, as kube-apiserver's.
const PluginName = validating.PluginName

// readyTimeout is how long a request waits for the plugin to be ready, as
// admission.Handler.WaitForReady waits.
const readyTimeout = 10 * time.Second

// excluded are the resources no policy applies to, as upstream's
// (never-stored reviews).
var excluded = []schema.GroupResource{
	{Group: "authentication.k8s.io", Resource: "tokenreviews"},
	{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"},
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "selfsubjectrulesreviews"},
}

// Plugin is the ValidatingAdmissionPolicy admission plugin.
type Plugin struct {
	authz auth.Authorizer

	mu      sync.Mutex
	inner   *validating.Plugin
	started chan struct{}
}

var _ admission.ValidationInterface = (*Plugin)(nil)

// New returns the plugin, not yet started. authz answers the policies'
// `authorizer` variable.
func New(authz auth.Authorizer) *Plugin {
	return &Plugin{authz: authz, started: make(chan struct{})}
}

// Handles reports the operations policies apply to.
func (p *Plugin) Handles(op admission.Operation) bool {
	switch op {
	case admission.Create, admission.Update, admission.Delete, admission.Connect:
		return true
	}
	return false
}

// Validate evaluates the policies bound to the request.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	inner, err := p.wait(ctx, a)
	if err != nil {
		return err
	}
	return inner.Validate(ctx, a, o)
}

func (p *Plugin) wait(ctx context.Context, a admission.Attributes) (*validating.Plugin, error) {
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-p.started:
	case <-t.C:
		return nil, admission.NewForbidden(a, errors.New("not yet ready to handle request"))
	case <-ctx.Done():
		return nil, admission.NewForbidden(a, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inner, nil
}

// Start is the API server's post-start hook: it builds the plugin on
// clients of the loopback config and starts its informers. The plugin
// runs until ctx ends.
func (p *Plugin) Start(ctx context.Context, cfg *rest.Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	mapper := &resettingMapper{DeferredDiscoveryRESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	return p.start(ctx, client, dyn, mapper, informers.NewSharedInformerFactory(client, 0))
}

// start builds the library's plugin from its dependencies and starts the
// informer factory.
func (p *Plugin) start(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, mapper meta.RESTMapper, factory informers.SharedInformerFactory) error {
	inner, err := validating.NewPlugin(nil)
	if err != nil {
		return err
	}
	inner.SetExternalKubeClientSet(client)
	inner.SetExternalKubeInformerFactory(factory)
	inner.SetDynamicClient(dyn)
	inner.SetRESTMapper(mapper)
	inner.SetDrainedNotification(ctx.Done())
	inner.SetUnconditionalAuthorizer(authorizerAdapter{p.authz})
	inner.SetExcludedAdmissionResources(excluded)
	if err := inner.ValidateInitialization(); err != nil {
		return fmt.Errorf("%s admission plugin: %w", PluginName, err)
	}
	// The informers the plugin registered start now.
	factory.Start(ctx.Done())
	p.mu.Lock()
	p.inner = inner
	p.mu.Unlock()
	close(p.started)
	return nil
}

// resettingMapper is a discovery RESTMapper that reads discovery again
// when asked for a kind it does not know (a param kind whose
// CustomResourceDefinition came after the mapper's last read). The policy
// source retries a policy whose param kind is unknown every second.
type resettingMapper struct {
	*restmapper.DeferredDiscoveryRESTMapper
	mu        sync.Mutex
	lastReset time.Time
}

func (m *resettingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	mapping, err := m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
	if err == nil || !meta.IsNoMatchError(err) {
		return mapping, err
	}
	m.mu.Lock()
	reset := time.Since(m.lastReset) > time.Second
	if reset {
		m.lastReset = time.Now()
	}
	m.mu.Unlock()
	if !reset {
		return nil, err
	}
	m.Reset()
	return m.DeferredDiscoveryRESTMapper.RESTMapping(gk, versions...)
}

// authorizerAdapter answers the library's authorization checks (the CEL
// `authorizer` variable) with Havre's authorizer.
type authorizerAdapter struct{ authz auth.Authorizer }

func (a authorizerAdapter) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.authz == nil {
		return authorizer.DecisionNoOpinion, "no authorizer", nil
	}
	var u *auth.User
	if ui := attrs.GetUser(); ui != nil {
		u = &auth.User{Name: ui.GetName(), UID: ui.GetUID(), Groups: ui.GetGroups(), Extra: ui.GetExtra()}
	}
	d, reason, err := a.authz.Authorize(ctx, auth.Attributes{
		User:            u,
		Verb:            attrs.GetVerb(),
		APIGroup:        attrs.GetAPIGroup(),
		APIVersion:      attrs.GetAPIVersion(),
		Resource:        attrs.GetResource(),
		Subresource:     attrs.GetSubresource(),
		Namespace:       attrs.GetNamespace(),
		Name:            attrs.GetName(),
		Path:            attrs.GetPath(),
		ResourceRequest: attrs.IsResourceRequest(),
	})
	switch d {
	case auth.DecisionAllow:
		return authorizer.DecisionAllow, reason, err
	case auth.DecisionDeny:
		return authorizer.DecisionDeny, reason, err
	}
	return authorizer.DecisionNoOpinion, reason, err
}

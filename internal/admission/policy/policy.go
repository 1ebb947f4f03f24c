// Package policy is the ValidatingAdmissionPolicy admission plugin:
// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicies and their
// bindings, evaluated with k8s.io/apiserver's library (CEL validations,
// match constraints and conditions, variables, params from any kind,
// validation actions Deny, Warn and Audit, failure policies).
//
// The plugin is built by New and initialised as kube-apiserver's plugins
// are (upstream's initializer interfaces: clients over the server's
// loopback config, a shared informer factory, a RESTMapper, an authorizer).
// Until its informers have synced, a request waits, as kube-apiserver makes
// it wait, and is then forbidden.
//
// It must never write: it only reads policies, bindings and params.
package policy

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	hadmission "github.com/havre/havre/internal/admission"
	"github.com/havre/havre/internal/auth"
)

// PluginName is the plugin's name, as kube-apiserver's.
const PluginName = validating.PluginName

// Plugin is the ValidatingAdmissionPolicy admission plugin: the library's,
// whose RESTMapper reads discovery again for kinds it does not know.
type Plugin struct {
	*validating.Plugin
}

var _ admission.ValidationInterface = (*Plugin)(nil)

// New returns the plugin, uninitialised: it is given its clients, informer
// factory, RESTMapper, authorizer and stop channel through upstream's
// initializer interfaces (k8s.io/apiserver/pkg/admission/initializer), then
// ValidateInitialization is called, then the informer factory is started.
func New() (admission.Interface, error) {
	inner, err := validating.NewPlugin(nil)
	if err != nil {
		return nil, err
	}
	return &Plugin{Plugin: inner}, nil
}

// SetRESTMapper implements initializer.WantsRESTMapper: a mapper that can
// be reset (a discovery mapper) is reset when asked for an unknown kind.
func (p *Plugin) SetRESTMapper(m meta.RESTMapper) {
	if r, ok := m.(meta.ResettableRESTMapper); ok {
		m = &resettingMapper{ResettableRESTMapper: r}
	}
	p.Plugin.SetRESTMapper(m)
}

// resettingMapper is a discovery RESTMapper that reads discovery again
// when asked for a kind it does not know (a param kind whose
// CustomResourceDefinition came after the mapper's last read). The policy
// source retries a policy whose param kind is unknown every second.
type resettingMapper struct {
	meta.ResettableRESTMapper
	mu        sync.Mutex
	lastReset time.Time
}

func (m *resettingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	mapping, err := m.ResettableRESTMapper.RESTMapping(gk, versions...)
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
	return m.ResettableRESTMapper.RESTMapping(gk, versions...)
}

// Authorizer adapts Havre's authorizer to k8s.io/apiserver's, for the
// policies' CEL `authorizer` variable (it decides no conditions).
func Authorizer(authz auth.Authorizer) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(authorizerAdapter{authz}.Authorize)
}

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

// Factory is the plugin's entry in the server's admission chain.
var Factory = hadmission.Factory{Name: PluginName, New: New}

package admission

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	genericinit "k8s.io/apiserver/pkg/admission/initializer"
	webhookinit "k8s.io/apiserver/pkg/admission/plugin/webhook/initializer"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Factory builds one plugin of the chain. New returns an uninitialised
// plugin: Start hands it what it wants through upstream's initializer
// interfaces (k8s.io/apiserver/pkg/admission/initializer: WantsExternalKubeClientSet,
// WantsExternalKubeInformerFactory, WantsDynamicClient, WantsRESTMapper,
// WantsAuthorizer, WantsFeatures, WantsDrainedNotification; and the
// webhook ones: WantsServiceResolver, WantsAuthenticationInfoResolverWrapper),
// then calls its ValidateInitialization.
type Factory struct {
	Name string
	New  func() (admission.Interface, error)
}

// ExcludedResources are never offered to webhooks and policies, as
// kube-apiserver's: their own configurations, so that a webhook cannot
// keep itself from being changed or removed, and the reviews, which are
// never stored.
var ExcludedResources = []schema.GroupResource{
	{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations"},
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"},
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings"},
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicies"},
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicybindings"},
	{Group: "authentication.k8s.io", Resource: "tokenreviews"},
	{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"},
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews"},
	{Group: "authorization.k8s.io", Resource: "selfsubjectrulesreviews"},
}

// Options are what Start gives the plugins beyond the loopback clients.
type Options struct {
	// Authorizer answers plugins that authorize (policy paramKind checks).
	// Nil: none is offered.
	Authorizer authorizer.Authorizer
}

// Start builds the plugins of factories with clients over the server's
// loopback config and informers of their own, waits until the informers
// have synced, and registers the plugins in chain in the order given. It
// is meant to run as the API server's first post-start hook: the server
// reports ready only once every plugin is registered, and the informers
// run until ctx is done.
func Start(ctx context.Context, chain *Chain, loopback *rest.Config, factories []Factory, opts Options) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(loopback)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	resolver, err := NewServiceResolver(factory)
	if err != nil {
		return err
	}
	initializers := admission.PluginInitializers{
		genericinit.New(client, dyn, factory, opts.Authorizer, utilfeature.DefaultFeatureGate,
			utilcompatibility.DefaultBuildEffectiveVersion(), ctx.Done(), mapper),
		webhookinit.NewPluginInitializer(nil, resolver),
	}
	plugins := make([]Plugin, 0, len(factories))
	for _, f := range factories {
		p, err := f.New()
		if err != nil {
			return fmt.Errorf("admission plugin %s: %w", f.Name, err)
		}
		initializers.Initialize(p)
		if wants, ok := p.(genericinit.WantsExcludedAdmissionResources); ok {
			wants.SetExcludedAdmissionResources(ExcludedResources)
		}
		if v, ok := p.(admission.InitializationValidator); ok {
			if err := v.ValidateInitialization(); err != nil {
				return fmt.Errorf("admission plugin %s: %w", f.Name, err)
			}
		}
		plugins = append(plugins, Plugin{Name: f.Name, Interface: p})
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("admission: informer of %v did not sync: %w", typ, ctx.Err())
		}
	}
	for _, p := range plugins {
		chain.Register(p.Name, p.Interface)
	}
	return nil
}

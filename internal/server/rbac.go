package server

import (
	"context"
	"fmt"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac"
	"github.com/havre/havre/internal/auth/rbac/bootstrap"
)

// newAuthorizer returns the server's authorizer, as kube-apiserver's
// default: system:masters may do anything, then RBAC; what neither allows
// is forbidden. The index is filled by startRBAC.
func newAuthorizer() (auth.Authorizer, *rbac.Index) {
	index := rbac.NewIndex()
	return auth.Chain{auth.PrivilegedGroups{auth.GroupMasters}, rbac.Authorizer{Index: index}}, index
}

// startRBAC is the API server's post-start hook: it reconciles the
// bootstrap policy, then fills the authorizer's index from informers of
// its own and returns once they have synced, so that the server is ready
// only when RBAC decides from the whole policy.
func startRBAC(index *rbac.Index) func(ctx context.Context, cfg *rest.Config) error {
	return func(ctx context.Context, cfg *rest.Config) error {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if err := bootstrap.Reconcile(cs); err != nil {
			return fmt.Errorf("rbac bootstrap policy: %w", err)
		}
		factory := informers.NewSharedInformerFactory(cs, 0)
		synced, err := index.Register(factory)
		if err != nil {
			return err
		}
		factory.Start(ctx.Done())
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			return fmt.Errorf("rbac: informers did not sync: %w", ctx.Err())
		}
		return nil
	}
}

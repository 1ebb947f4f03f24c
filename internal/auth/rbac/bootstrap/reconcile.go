package bootstrap

import (
	"fmt"
	"log/slog"
	"slices"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
)

// Reconcile makes the cluster hold the bootstrap policy, as kube-apiserver's
// rbac/bootstrap-roles post-start hook: missing roles and bindings are
// created; existing ones get the rules, aggregation selectors and subjects
// they lack (never losing any), unless annotated
// rbac.authorization.kubernetes.io/autoupdate: "false". Havre's own roles
// and bindings (HavreRoles, HavreRoleBindings) are reconciled likewise.
func Reconcile(cs kubernetes.Interface) error {
	p := Load()
	rbac, namespaces := cs.RbacV1(), cs.CoreV1().Namespaces()
	reconcileRole := func(o *reconciliation.ReconcileRoleOptions) error {
		return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			r, err := o.Run()
			if err == nil && r.Operation != reconciliation.ReconcileNone && !r.Protected {
				slog.Debug("rbac bootstrap policy", "role", o.Role.GetNamespace()+"/"+o.Role.GetName(), "operation", r.Operation)
			}
			return err
		})
	}
	reconcileBinding := func(o *reconciliation.ReconcileRoleBindingOptions) error {
		return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			r, err := o.Run()
			if err == nil && r.Operation != reconciliation.ReconcileNone && !r.Protected {
				slog.Debug("rbac bootstrap policy", "binding", o.RoleBinding.GetNamespace()+"/"+o.RoleBinding.GetName(), "operation", r.Operation)
			}
			return err
		})
	}
	// The objects are independent: reconciled a few at a time (each is a
	// read and maybe a write over the loopback; one after another they
	// were a third of a restart).
	var g errgroup.Group
	g.SetLimit(8)
	for _, r := range slices.Concat(p.ClusterRoles, p.ControllerRoles, HavreRoles(p)) {
		g.Go(func() error {
			if err := reconcileRole(&reconciliation.ReconcileRoleOptions{
				Role:    reconciliation.ClusterRoleRuleOwner{ClusterRole: &r},
				Client:  reconciliation.ClusterRoleModifier{Client: rbac.ClusterRoles()},
				Confirm: true,
			}); err != nil {
				return fmt.Errorf("reconciling ClusterRole %s: %w", r.Name, err)
			}
			return nil
		})
	}
	for _, b := range slices.Concat(p.ClusterRoleBindings, p.ControllerRoleBindings, HavreRoleBindings()) {
		g.Go(func() error {
			if err := reconcileBinding(&reconciliation.ReconcileRoleBindingOptions{
				RoleBinding: reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &b},
				Client:      reconciliation.ClusterRoleBindingClientAdapter{Client: rbac.ClusterRoleBindings()},
				Confirm:     true,
			}); err != nil {
				return fmt.Errorf("reconciling ClusterRoleBinding %s: %w", b.Name, err)
			}
			return nil
		})
	}
	for _, roles := range p.NamespaceRoles {
		for _, r := range roles {
			g.Go(func() error {
				if err := reconcileRole(&reconciliation.ReconcileRoleOptions{
					Role:    reconciliation.RoleRuleOwner{Role: &r},
					Client:  reconciliation.RoleModifier{Client: rbac, NamespaceClient: namespaces},
					Confirm: true,
				}); err != nil {
					return fmt.Errorf("reconciling Role %s/%s: %w", r.Namespace, r.Name, err)
				}
				return nil
			})
		}
	}
	for _, bindings := range p.NamespaceRoleBindings {
		for _, b := range bindings {
			g.Go(func() error {
				if err := reconcileBinding(&reconciliation.ReconcileRoleBindingOptions{
					RoleBinding: reconciliation.RoleBindingAdapter{RoleBinding: &b},
					Client:      reconciliation.RoleBindingClientAdapter{Client: rbac, NamespaceClient: namespaces},
					Confirm:     true,
				}); err != nil {
					return fmt.Errorf("reconciling RoleBinding %s/%s: %w", b.Namespace, b.Name, err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

package bootstrap

import (
	"fmt"
	"log/slog"
	"slices"

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
	for _, r := range slices.Concat(p.ClusterRoles, p.ControllerRoles, HavreRoles(p)) {
		if err := reconcileRole(&reconciliation.ReconcileRoleOptions{
			Role:    reconciliation.ClusterRoleRuleOwner{ClusterRole: &r},
			Client:  reconciliation.ClusterRoleModifier{Client: rbac.ClusterRoles()},
			Confirm: true,
		}); err != nil {
			return fmt.Errorf("reconciling ClusterRole %s: %w", r.Name, err)
		}
	}
	for _, b := range slices.Concat(p.ClusterRoleBindings, p.ControllerRoleBindings, HavreRoleBindings()) {
		if err := reconcileBinding(&reconciliation.ReconcileRoleBindingOptions{
			RoleBinding: reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &b},
			Client:      reconciliation.ClusterRoleBindingClientAdapter{Client: rbac.ClusterRoleBindings()},
			Confirm:     true,
		}); err != nil {
			return fmt.Errorf("reconciling ClusterRoleBinding %s: %w", b.Name, err)
		}
	}
	for _, roles := range p.NamespaceRoles {
		for _, r := range roles {
			if err := reconcileRole(&reconciliation.ReconcileRoleOptions{
				Role:    reconciliation.RoleRuleOwner{Role: &r},
				Client:  reconciliation.RoleModifier{Client: rbac, NamespaceClient: namespaces},
				Confirm: true,
			}); err != nil {
				return fmt.Errorf("reconciling Role %s/%s: %w", r.Namespace, r.Name, err)
			}
		}
	}
	for _, bindings := range p.NamespaceRoleBindings {
		for _, b := range bindings {
			if err := reconcileBinding(&reconciliation.ReconcileRoleBindingOptions{
				RoleBinding: reconciliation.RoleBindingAdapter{RoleBinding: &b},
				Client:      reconciliation.RoleBindingClientAdapter{Client: rbac, NamespaceClient: namespaces},
				Confirm:     true,
			}); err != nil {
				return fmt.Errorf("reconciling RoleBinding %s/%s: %w", b.Namespace, b.Name, err)
			}
		}
	}
	return nil
}

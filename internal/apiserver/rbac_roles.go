package apiserver

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
)

// RoleRules reads the rules of the Role (in namespace) or ClusterRole ref
// names from the store: what the RBAC escalation check compares a new
// binding with. Reading the store, not an informer's cache, a role
// written just before its binding is always seen.
func (s *Server) RoleRules(ctx context.Context, ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		h := s.handler(rbacv1.GroupName, "v1", "roles")
		if h == nil {
			return nil, fmt.Errorf("roles are not served")
		}
		obj, err := h.objs.get(ctx, namespace, ref.Name)
		if err != nil {
			return nil, err
		}
		return obj.(*rbacv1.Role).Rules, nil
	case "ClusterRole":
		h := s.handler(rbacv1.GroupName, "v1", "clusterroles")
		if h == nil {
			return nil, fmt.Errorf("clusterroles are not served")
		}
		obj, err := h.objs.get(ctx, "", ref.Name)
		if err != nil {
			return nil, err
		}
		return obj.(*rbacv1.ClusterRole).Rules, nil
	}
	return nil, fmt.Errorf("unsupported role reference kind %q", ref.Kind)
}

// Package rbac is Havre's RBAC authorizer: it decides requests from the
// Roles, ClusterRoles, RoleBindings and ClusterRoleBindings of
// rbac.authorization.k8s.io/v1 with kube-apiserver's rules
// (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac), and refuses RBAC
// writes that would grant what their author does not hold (escalation
// prevention, as k8s.io/kubernetes/pkg/registry/rbac).
//
// The four kinds are kept in an index fed by informers (see Register):
// bindings are indexed by the users and groups they name, so a request
// costs a few map lookups and the rules of the roles bound to its user,
// however many bindings the cluster has.
//
// This package must never import k8s.io/apiserver or k8s.io/kubernetes; its
// agreement with upstream's authorizer is checked by test/rbacdiff.
package rbac

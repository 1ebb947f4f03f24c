// Package rbac holds the strategies for the rbac.authorization.k8s.io/v1
// kinds: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, with
// upstream's defaults and validation (k8s.io/kubernetes/pkg/apis/rbac).
//
// Who may create what (escalation prevention) is not decided here but by
// the authorizer's admission hooks (internal/auth/rbac).
package rbac

// Package bootstrap holds upstream's bootstrap RBAC policy (the roles and
// bindings kube-apiserver creates at start: cluster-admin, admin, edit,
// view, system:discovery, system:node, the controllers' roles, ...) and
// reconciles it into the cluster as kube-apiserver's storage_rbac post-start
// hook does.
//
// policy.json is k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/
// bootstrappolicy's output at the k8s.io version of go.mod, written and
// checked object for object by test/rbacdiff (run there with -update after
// a Kubernetes bump).
package bootstrap

import (
	_ "embed"
	"encoding/json"

	rbacv1 "k8s.io/api/rbac/v1"
)

//go:embed policy.json
var policyJSON []byte

// Policy is the bootstrap policy, in upstream's lists.
type Policy struct {
	ClusterRoles           []rbacv1.ClusterRole            `json:"clusterRoles"`
	ClusterRoleBindings    []rbacv1.ClusterRoleBinding     `json:"clusterRoleBindings"`
	ControllerRoles        []rbacv1.ClusterRole            `json:"controllerRoles"`
	ControllerRoleBindings []rbacv1.ClusterRoleBinding     `json:"controllerRoleBindings"`
	NamespaceRoles         map[string][]rbacv1.Role        `json:"namespaceRoles"`
	NamespaceRoleBindings  map[string][]rbacv1.RoleBinding `json:"namespaceRoleBindings"`
}

// Load returns a fresh copy of the policy.
func Load() Policy {
	var p Policy
	if err := json.Unmarshal(policyJSON, &p); err != nil {
		panic("bootstrap: policy.json: " + err.Error())
	}
	return p
}

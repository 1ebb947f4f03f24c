package bootstrap

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Havre's own additions to upstream's policy.
const (
	// NodeAgentRole is the ClusterRole of `havre agent`s: upstream's
	// system:node and system:node-proxier (the agent is kubelet and
	// kube-proxy), plus what its NetworkPolicy enforcement reads and its
	// local volume provisioner needs.
	NodeAgentRole = "havre:node-agent"
	// groupBootstrappers is the group of the cluster join token, with which
	// agents authenticate.
	groupBootstrappers = "system:bootstrappers"
)

// HavreRoles returns Havre's ClusterRoles beyond upstream's.
func HavreRoles(p Policy) []rbacv1.ClusterRole {
	var rules []rbacv1.PolicyRule
	for _, r := range p.ClusterRoles {
		if r.Name == "system:node" || r.Name == "system:node-proxier" {
			rules = append(rules, r.Rules...)
		}
	}
	rules = append(rules,
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"namespaces"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}},
		// The local volume provisioner (internal/volume/provisioner), as
		// external-provisioner's and external-resizer's roles.
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}, APIGroups: []string{""}, Resources: []string{"persistentvolumes"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch", "update", "patch"}, APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}},
		rbacv1.PolicyRule{Verbs: []string{"update", "patch"}, APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims/status"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}, APIGroups: []string{"storage.k8s.io"}, Resources: []string{"csistoragecapacities"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshots"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch", "update", "patch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotcontents"}},
		rbacv1.PolicyRule{Verbs: []string{"update", "patch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotcontents/status"}},
	)
	return []rbacv1.ClusterRole{{ObjectMeta: meta(NodeAgentRole), Rules: rules}}
}

// HavreRoleBindings returns Havre's ClusterRoleBindings beyond upstream's:
// the join token's group holds NodeAgentRole.
func HavreRoleBindings() []rbacv1.ClusterRoleBinding {
	return []rbacv1.ClusterRoleBinding{{
		ObjectMeta: meta(NodeAgentRole),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: NodeAgentRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: groupBootstrappers}},
	}}
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"},
		Annotations: map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"}}
}

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
	// groupNodes is the group of nodes' own identities (system:node:<name>),
	// as the server's embedded agent authenticates.
	groupNodes = "system:nodes"

	// ServiceLBControllerRole is the ClusterRole of Havre's service-lb
	// controller (ServiceAccount kube-system/service-lb-controller), which
	// writes LoadBalancer Services' status.
	ServiceLBControllerRole = "havre:controller:service-lb-controller"
	// SnapshotControllerRole is the ClusterRole of the snapshot controller
	// (ServiceAccount kube-system/snapshot-controller): external-snapshotter's
	// snapshot-controller-runner role.
	SnapshotControllerRole = "havre:controller:snapshot-controller"
	// GatewayControllerRole is the ClusterRole of Havre's Gateway API status
	// controller (ServiceAccount kube-system/gateway-controller).
	GatewayControllerRole = "havre:controller:gateway-controller"
	// CertificatesControllerRole is the ClusterRole of Havre's certificates
	// controller (ServiceAccount kube-system/certificates-controller), which
	// writes Ingresses' TLS Secrets, the ACME challenges and account
	// Secrets and the cluster issuer's CA Secret.
	CertificatesControllerRole = "havre:controller:certificates-controller"
	// SchedulerRole is what Havre's scheduler reads beyond upstream's
	// system:kube-scheduler: the VolumeSnapshots a claim restores from.
	SchedulerRole = "havre:kube-scheduler"
	// IngressControllerRole is the ClusterRole of Havre's ingress
	// controller (ServiceAccount kube-system/ingress-controller), which
	// writes Ingress status.
	IngressControllerRole = "havre:controller:ingress-controller"

	// schedulerUser is kube-scheduler's user.
	schedulerUser = "system:kube-scheduler"
	// controllerNamespace holds the controllers' ServiceAccounts.
	controllerNamespace = "kube-system"
)

// HavreRoles returns Havre's ClusterRoles beyond upstream's.
func HavreRoles(p Policy) []rbacv1.ClusterRole {
	gatewayRead := rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"gateway.networking.k8s.io"},
		Resources: []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"}}
	var rules []rbacv1.PolicyRule
	for _, r := range p.ClusterRoles {
		if r.Name == "system:node" || r.Name == "system:node-proxier" {
			rules = append(rules, r.Rules...)
		}
	}
	rules = append(rules,
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"namespaces"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}},
		// The ingress proxy (internal/network/ingress): Ingresses, their
		// classes and TLS Secrets, the ACME challenges Secret.
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "ingressclasses"}},
		rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
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
		// The ingress proxy's Gateway API translator (internal/network/gateway).
		gatewayRead,
	)
	events := rbacv1.PolicyRule{Verbs: []string{"create", "update", "patch"}, APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}}
	return []rbacv1.ClusterRole{
		{ObjectMeta: meta(NodeAgentRole), Rules: rules},
		{ObjectMeta: meta(ServiceLBControllerRole), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"services"}},
			{Verbs: []string{"update", "patch"}, APIGroups: []string{""}, Resources: []string{"services/status"}},
			events,
		}},
		{ObjectMeta: meta(SnapshotControllerRole), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"persistentvolumes"}},
			{Verbs: []string{"get", "list", "watch", "update"}, APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}},
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotclasses"}},
			{Verbs: []string{"create", "get", "list", "watch", "update", "delete", "patch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotcontents"}},
			{Verbs: []string{"update", "patch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotcontents/status"}},
			{Verbs: []string{"get", "list", "watch", "update", "patch", "delete"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshots"}},
			{Verbs: []string{"update", "patch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshots/status"}},
			events,
		}},
		{ObjectMeta: meta(IngressControllerRole), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "ingressclasses"}},
			{Verbs: []string{"update", "patch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses/status"}},
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"nodes"}},
			events,
		}},
		{ObjectMeta: meta(GatewayControllerRole), Rules: []rbacv1.PolicyRule{
			gatewayRead,
			{Verbs: []string{"update", "patch"}, APIGroups: []string{"gateway.networking.k8s.io"},
				Resources: []string{"gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status"}},
			{Verbs: []string{"get"}, APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}},
			events,
		}},
		{ObjectMeta: meta(CertificatesControllerRole), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "ingressclasses"}},
			{Verbs: []string{"get", "create", "update"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"nodes"}},
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"gateway.networking.k8s.io"}, Resources: []string{"gateways"}},
			{Verbs: []string{"list", "watch"}, APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}},
			events,
		}},
		{ObjectMeta: meta(SchedulerRole), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshots", "volumesnapshotcontents"}},
		}},
	}
}

// HavreRoleBindings returns Havre's ClusterRoleBindings beyond upstream's:
// the join token's group and the nodes' group hold NodeAgentRole; Havre's
// controllers' ServiceAccounts and the scheduler hold their roles.
func HavreRoleBindings() []rbacv1.ClusterRoleBinding {
	binding := func(role string, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
		return rbacv1.ClusterRoleBinding{
			ObjectMeta: meta(role),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		}
	}
	serviceAccount := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: controllerNamespace}
	}
	return []rbacv1.ClusterRoleBinding{
		binding(NodeAgentRole,
			rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: groupBootstrappers},
			rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: groupNodes}),
		binding(ServiceLBControllerRole, serviceAccount("service-lb-controller")),
		binding(SnapshotControllerRole, serviceAccount("snapshot-controller")),
		binding(IngressControllerRole, serviceAccount("ingress-controller")),
		binding(GatewayControllerRole, serviceAccount("gateway-controller")),
		binding(CertificatesControllerRole, serviceAccount("certificates-controller")),
		binding(SchedulerRole, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: schedulerUser}),
	}
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name,
		Labels:      map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"},
		Annotations: map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"}}
}

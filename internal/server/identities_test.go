package server

import (
	"context"
	"strings"
	"testing"

	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac/bootstrap"
)

// policyAuthorizer is the server's authorizer over the bootstrap policy
// (upstream's and Havre's objects), as a fresh cluster holds it.
func policyAuthorizer() auth.Authorizer {
	z, index := newAuthorizer()
	p := bootstrap.Load()
	for _, r := range append(append(p.ClusterRoles, p.ControllerRoles...), bootstrap.HavreRoles(p)...) {
		index.SetClusterRole(&r)
	}
	for _, b := range append(append(p.ClusterRoleBindings, p.ControllerRoleBindings...), bootstrap.HavreRoleBindings()...) {
		index.SetClusterRoleBinding(&b)
	}
	for _, roles := range p.NamespaceRoles {
		for _, r := range roles {
			index.SetRole(&r)
		}
	}
	for _, bindings := range p.NamespaceRoleBindings {
		for _, b := range bindings {
			index.SetRoleBinding(&b)
		}
	}
	return z
}

// request is "verb group/resource[/subresource]" in a namespace ("" for
// cluster-scoped or all namespaces).
func allowed(t *testing.T, z auth.Authorizer, id identity, request, namespace string) bool {
	t.Helper()
	verb, gr, _ := strings.Cut(request, " ")
	group, res, _ := strings.Cut(gr, "/")
	res, sub, _ := strings.Cut(res, "/")
	u := &auth.User{Name: id.user, Groups: append(append([]string{}, id.groups...), auth.GroupAuthenticated)}
	d, _, err := z.Authorize(context.Background(), auth.Attributes{User: u, Verb: verb, APIGroup: group, Resource: res,
		Subresource: sub, Namespace: namespace, ResourceRequest: true})
	if err != nil {
		t.Fatalf("%s %s: %v", id.user, request, err)
	}
	return d == auth.DecisionAllow
}

// runsAsAPIServer are the controllers upstream runs inside kube-apiserver,
// on its loopback (system:masters) client.
var runsAsAPIServer = map[string]bool{"crd": true, "kubernetes-endpoints": true}

// TestControllerIdentities: every controller of the table runs as an
// identity of its own that the bootstrap policy grants what it writes,
// and no more than a controller's share: none is a cluster administrator.
func TestControllerIdentities(t *testing.T) {
	z := policyAuthorizer()
	// What each controller writes (its reads go through the shared
	// informers, as system:kube-controller-manager).
	writes := map[string][]string{
		"namespace":                              {"delete /namespaces", "update /namespaces/finalize", "deletecollection apps/deployments", "list /pods"},
		"garbagecollector":                       {"delete apps/replicasets", "patch /pods", "list /configmaps"},
		"nodeipam":                               {"patch /nodes"},
		"clusterrole-aggregation":                {"update rbac.authorization.k8s.io/clusterroles", "escalate rbac.authorization.k8s.io/clusterroles"},
		"cronjob":                                {"create batch/jobs", "update batch/cronjobs/status", "create /events"},
		"daemonset":                              {"create /pods", "create /pods/binding", "update apps/daemonsets/status", "create apps/controllerrevisions"},
		"deployment":                             {"create apps/replicasets", "update apps/deployments/status", "create /events"},
		"disruption":                             {"update policy/poddisruptionbudgets/status", "get apps/deployments/scale"},
		"endpoints-controller":                   {"create /endpoints", "delete /endpoints"},
		"ephemeral-volume-controller":            {"create /persistentvolumeclaims"},
		"endpointslice-controller":               {"create discovery.k8s.io/endpointslices", "delete discovery.k8s.io/endpointslices"},
		"endpointslice-mirroring-controller":     {"create discovery.k8s.io/endpointslices"},
		"job":                                    {"create /pods", "update batch/jobs/status", "patch /pods"},
		"nodelifecycle":                          {"update /nodes/status", "delete /pods", "patch /nodes"},
		"persistentvolume-binder-controller":     {"update /persistentvolumes", "update /persistentvolumeclaims/status", "create /events"},
		"persistentvolume-protection-controller": {"update /persistentvolumes"},
		"persistentvolumeclaim-protection-controller": {"update /persistentvolumeclaims"},
		"replicaset":             {"create /pods", "delete /pods", "update apps/replicasets/status"},
		"root-ca-cert-publisher": {"create /configmaps", "update /configmaps"},
		"scheduler":              {"create /pods/binding", "patch /pods/status", "update /persistentvolumeclaims", "get snapshot.storage.k8s.io/volumesnapshots"},
		"service-lb-controller":  {"update /services/status", "create /events"},
		"serviceaccount":         {"create /serviceaccounts"},
		"snapshot-controller":    {"create snapshot.storage.k8s.io/volumesnapshotcontents", "update snapshot.storage.k8s.io/volumesnapshots/status", "update /persistentvolumeclaims"},
		"statefulset":            {"create /pods", "create /persistentvolumeclaims", "update apps/statefulsets/status"},
		"ttl-after-finished":     {"delete batch/jobs"},
	}
	for _, c := range controllers {
		if c.as.user == "" {
			if !runsAsAPIServer[c.name] {
				t.Errorf("controller %q runs as the API server (a cluster administrator): give it an identity of its own", c.name)
			}
			continue
		}
		if runsAsAPIServer[c.name] {
			t.Errorf("controller %q: expected to run as the API server", c.name)
		}
		want, ok := writes[c.name]
		if !ok {
			t.Errorf("controller %q: list what it writes in this test", c.name)
		}
		for _, w := range want {
			if !allowed(t, z, c.as, w, "ns1") {
				t.Errorf("controller %q as %s may not %s", c.name, c.as.user, w)
			}
		}
		// Least privilege: no controller may do everything, nor read
		// Secrets it has no use for.
		if allowed(t, z, c.as, "create /secrets", "ns1") {
			t.Errorf("controller %q as %s may create secrets", c.name, c.as.user)
		}
		if allowed(t, z, c.as, "impersonate /users", "") || allowed(t, z, c.as, "create rbac.authorization.k8s.io/clusterrolebindings", "") {
			t.Errorf("controller %q as %s may escalate", c.name, c.as.user)
		}
	}
	// The shared informers read everything as kube-controller-manager,
	// which writes nothing of the workloads' own.
	for _, r := range []string{"list /pods", "watch /pods", "list apps/deployments", "watch snapshot.storage.k8s.io/volumesnapshots", "list /secrets"} {
		if !allowed(t, z, asControllerManager, r, "") {
			t.Errorf("%s may not %s", asControllerManager.user, r)
		}
	}
	for _, r := range []string{"create /pods", "delete apps/replicasets", "update /nodes"} {
		if allowed(t, z, asControllerManager, r, "ns1") {
			t.Errorf("%s may %s", asControllerManager.user, r)
		}
	}
	// The embedded agent, as its node.
	node := nodeIdentity("n1")
	for _, r := range []string{"create /nodes", "patch /nodes/status", "update /pods/status", "get /secrets", "create coordination.k8s.io/leases", "create /persistentvolumes"} {
		if !allowed(t, z, node, r, "ns1") {
			t.Errorf("%s may not %s", node.user, r)
		}
	}
	if allowed(t, z, node, "create apps/deployments", "ns1") || allowed(t, z, node, "delete /namespaces", "") {
		t.Errorf("%s may do more than a node", node.user)
	}
}

// TestDeploymentControllerCannotCreateSecrets is the example of upstream's
// e2e: `kubectl auth can-i --as=system:serviceaccount:kube-system:deployment-controller create secrets` says no.
func TestDeploymentControllerCannotCreateSecrets(t *testing.T) {
	if allowed(t, policyAuthorizer(), serviceAccount("deployment-controller"), "create /secrets", "default") {
		t.Error("deployment-controller may create secrets")
	}
}

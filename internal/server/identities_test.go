package server

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/auth"
	"github.com/havre/havre/internal/auth/rbac/bootstrap"
	"github.com/havre/havre/internal/auth/review"
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
// on its loopback (system:masters) client: the apiextensions controllers,
// the kubernetes Service's endpoints reconciler, the aggregator's
// APIService availability controller.
var runsAsAPIServer = map[string]bool{"crd": true, "kubernetes-endpoints": true, "apiservice-availability": true}

// TestControllerIdentities: every controller of the table runs as an
// identity of its own that the bootstrap policy grants what it writes,
// and no more than a controller's share: none is a cluster administrator.
func TestControllerIdentities(t *testing.T) {
	z := policyAuthorizer()
	// What each controller writes (its reads go through the shared
	// informers, as system:kube-controller-manager).
	writes := map[string][]string{
		"namespace":                              {"delete /namespaces", "update /namespaces/finalize", "deletecollection apps/deployments", "list /pods"},
		"gateway-controller":                     {"update gateway.networking.k8s.io/gateways/status", "update gateway.networking.k8s.io/httproutes/status", "update gateway.networking.k8s.io/gatewayclasses/status", "list gateway.networking.k8s.io/referencegrants", "get apiextensions.k8s.io/customresourcedefinitions"},
		"garbagecollector":                       {"delete apps/replicasets", "patch /pods", "list /configmaps"},
		"nodeipam":                               {"patch /nodes"},
		"certificates":                           {"create /secrets", "update /secrets", "get /secrets", "create /events", "list networking.k8s.io/ingresses", "watch gateway.networking.k8s.io/gateways"},
		"clusterrole-aggregation":                {"update rbac.authorization.k8s.io/clusterroles", "escalate rbac.authorization.k8s.io/clusterroles"},
		"cronjob":                                {"create batch/jobs", "update batch/cronjobs/status", "create /events"},
		"daemonset":                              {"create /pods", "create /pods/binding", "update apps/daemonsets/status", "create apps/controllerrevisions"},
		"deployment":                             {"create apps/replicasets", "update apps/deployments/status", "create /events"},
		"disruption":                             {"update policy/poddisruptionbudgets/status", "get apps/deployments/scale"},
		"endpoints-controller":                   {"create /endpoints", "delete /endpoints"},
		"ephemeral-volume-controller":            {"create /persistentvolumeclaims"},
		"endpointslice-controller":               {"create discovery.k8s.io/endpointslices", "delete discovery.k8s.io/endpointslices"},
		"endpointslice-mirroring-controller":     {"create discovery.k8s.io/endpointslices"},
		"ingress-controller":                     {"update networking.k8s.io/ingresses/status", "create /events"},
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
		"validatingadmissionpolicy-status-controller": {"update admissionregistration.k8s.io/validatingadmissionpolicies/status"},
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
		// Secrets it has no use for (the certificates controller writes
		// Ingresses' TLS Secrets: it may create them, not delete them).
		if c.name == "certificates" && allowed(t, z, c.as, "delete /secrets", "ns1") {
			t.Errorf("controller %q as %s may delete secrets", c.name, c.as.user)
		}
		if allowed(t, z, c.as, "create /secrets", "ns1") && c.name != "certificates" {
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

// TestLoopbackIdentities runs an API server with the bootstrap policy and
// RBAC, as `havre server` does: a controller's loopback config
// authenticates as its ServiceAccount, may do what its role grants, is
// refused the rest with upstream's 403, and the refusal is logged as an
// in-process component's.
func TestLoopbackIdentities(t *testing.T) {
	var logs syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	authorizer, index := newAuthorizer()
	srv, _ := runTestServer(t, t.TempDir(), nil, func(c *apiserver.Config) {
		c.Authorizer = authorizer
		c.Reviews = (&review.Reviewer{Authorizer: authorizer, Rules: index}).Handlers()
		c.PostStart = []func(context.Context, *rest.Config) error{startRBAC(index)}
	})
	ctx := context.Background()

	cfg, err := configFor(srv, serviceAccount("deployment-controller"))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "system:serviceaccount:kube-system:deployment-controller" ||
		!slices.Contains(u.Groups, "system:serviceaccounts:kube-system") || !slices.Contains(u.Groups, "system:authenticated") {
		t.Errorf("authenticated as %+v", u)
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}, Spec: appsv1.ReplicaSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
	if _, err := cs.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a ReplicaSet as the deployment controller: %v", err)
	}
	_, err = cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	want := `secrets is forbidden: User "system:serviceaccount:kube-system:deployment-controller" cannot create resource "secrets" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("creating a Secret as the deployment controller: %v, want %q", err, want)
	}
	if l := logs.String(); !strings.Contains(l, "an in-process component was forbidden") ||
		!strings.Contains(l, "user=system:serviceaccount:kube-system:deployment-controller verb=create group=\"\" resource=secrets") {
		t.Errorf("the denial is not logged:\n%s", l)
	}

	// The loopback admin is still the API server's own.
	admin := kubernetes.NewForConfigOrDie(srv.LoopbackConfig())
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a Secret as the API server: %v", err)
	}
	// A token of another server authenticates nobody.
	other := rest.CopyConfig(cfg)
	other.BearerToken = strings.Repeat("0", len(cfg.BearerToken))
	if _, err := kubernetes.NewForConfigOrDie(other).CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("an unknown token: %v, want 401", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

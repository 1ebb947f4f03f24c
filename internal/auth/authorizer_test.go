package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestForbiddenMessage(t *testing.T) {
	bob := &User{Name: "bob", Groups: []string{GroupAuthenticated}}
	tests := []struct {
		name   string
		a      Attributes
		reason string
		want   string
	}{{
		name: "namespaced list",
		a:    Attributes{User: bob, Verb: "list", APIVersion: "v1", Resource: "pods", Namespace: "default", ResourceRequest: true},
		want: `pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"`,
	}, {
		name: "cluster-scoped get by name",
		a:    Attributes{User: bob, Verb: "get", APIVersion: "v1", Resource: "nodes", Name: "n1", ResourceRequest: true},
		want: `nodes "n1" is forbidden: User "bob" cannot get resource "nodes" in API group "" at the cluster scope`,
	}, {
		name:   "with a reason",
		a:      Attributes{User: bob, Verb: "get", APIVersion: "v1", Resource: "nodes", Name: "n1", ResourceRequest: true},
		reason: "no RBAC policy matched",
		want:   `nodes "n1" is forbidden: User "bob" cannot get resource "nodes" in API group "" at the cluster scope: no RBAC policy matched`,
	}, {
		name: "group and subresource",
		a: Attributes{User: bob, Verb: "update", APIGroup: "apps", APIVersion: "v1", Resource: "deployments",
			Subresource: "scale", Namespace: "prod", Name: "web", ResourceRequest: true},
		want: `deployments.apps "web" is forbidden: User "bob" cannot update resource "deployments/scale" in API group "apps" in the namespace "prod"`,
	}, {
		name: "pod logs",
		a: Attributes{User: &User{Name: "system:serviceaccount:default:default"}, Verb: "get", APIVersion: "v1",
			Resource: "pods", Subresource: "log", Namespace: "kube-system", Name: "coredns-1", ResourceRequest: true},
		want: `pods "coredns-1" is forbidden: User "system:serviceaccount:default:default" cannot get resource "pods/log" in API group "" in the namespace "kube-system"`,
	}, {
		name: "cluster-scoped list in a group",
		a:    Attributes{User: bob, Verb: "list", APIGroup: "rbac.authorization.k8s.io", APIVersion: "v1", Resource: "clusterroles", ResourceRequest: true},
		want: `clusterroles.rbac.authorization.k8s.io is forbidden: User "bob" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`,
	}, {
		name: "watch across namespaces",
		a:    Attributes{User: bob, Verb: "watch", APIVersion: "v1", Resource: "secrets", ResourceRequest: true},
		want: `secrets is forbidden: User "bob" cannot watch resource "secrets" in API group "" at the cluster scope`,
	}, {
		name: "non-resource path",
		a:    Attributes{User: bob, Verb: "get", Path: "/foo"},
		want: `forbidden: User "bob" cannot get path "/foo"`,
	}, {
		name:   "non-resource path with a reason",
		a:      Attributes{User: bob, Verb: "post", Path: "/logs"},
		reason: "denied",
		want:   `forbidden: User "bob" cannot post path "/logs": denied`,
	}, {
		name: "anonymous",
		a:    Attributes{Verb: "get", Path: "/metrics"},
		want: `forbidden: User "" cannot get path "/metrics"`,
	}, {
		name: "HTML is escaped, the reason is not",
		a:    Attributes{User: &User{Name: "<b>&"}, Verb: "get", Path: "/x"},
		want: `forbidden: User "&lt;b&gt;&amp;" cannot get path "/x"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ForbiddenMessage(tt.a, tt.reason); got != tt.want {
				t.Errorf("ForbiddenMessage =\n  %s\nwant\n  %s", got, tt.want)
			}

			// The 403 error carries the message and kube's details, and its
			// prefix agrees with apimachinery's own NewForbidden.
			se := NewForbidden(tt.a, tt.reason)
			st := se.Status()
			if st.Code != http.StatusForbidden || st.Reason != "Forbidden" || st.Message != tt.want || st.Kind != "Status" || st.APIVersion != "v1" {
				t.Errorf("NewForbidden status = %+v", st)
			}
			if st.Details == nil || st.Details.Group != tt.a.APIGroup || st.Details.Kind != tt.a.Resource || st.Details.Name != tt.a.Name {
				t.Errorf("NewForbidden details = %+v", st.Details)
			}
			if !apierrors.IsForbidden(se) {
				t.Error("not IsForbidden")
			}
			ref := apierrors.NewForbidden(schema.GroupResource{Group: tt.a.APIGroup, Resource: tt.a.Resource}, tt.a.Name, errString("X"))
			if prefix := strings.TrimSuffix(ref.ErrStatus.Message, "X"); !strings.HasPrefix(tt.want, prefix) {
				t.Errorf("prefix differs from apierrors.NewForbidden's %q", prefix)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestAuthenticatedAllower(t *testing.T) {
	tests := []struct {
		name string
		user *User
		want Decision
	}{
		{"authenticated", &User{Name: "bob", Groups: []string{"dev", GroupAuthenticated}}, DecisionAllow},
		{"admin", &User{Name: "havre-admin", Groups: []string{GroupMasters, GroupAuthenticated}}, DecisionAllow},
		{"not in system:authenticated", &User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}, DecisionNoOpinion},
		{"no user", nil, DecisionNoOpinion},
	}
	var a Authorizer = AuthenticatedAllower{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, reason, err := a.Authorize(context.Background(), Attributes{User: tt.user, Verb: "get", Resource: "pods", ResourceRequest: true})
			if d != tt.want || reason != "" || err != nil {
				t.Errorf("Authorize = %v, %q, %v; want %v", d, reason, err, tt.want)
			}
		})
	}
	if DecisionDeny != 0 || Decision(0).String() != "Deny" || DecisionAllow.String() != "Allow" || DecisionNoOpinion.String() != "NoOpinion" {
		t.Error("Decision values or names changed")
	}
}

func TestUserContext(t *testing.T) {
	ctx := context.Background()
	if u, ok := UserFrom(ctx); ok || u != nil {
		t.Errorf("UserFrom(empty) = %v, %v", u, ok)
	}
	bob := &User{Name: "bob"}
	if u, ok := UserFrom(WithUser(ctx, bob)); !ok || u != bob {
		t.Errorf("UserFrom = %v, %v", u, ok)
	}
	if u, ok := UserFrom(WithUser(ctx, nil)); ok || u != nil {
		t.Errorf("UserFrom(nil user) = %v, %v", u, ok)
	}
}

type fixed struct {
	d      Decision
	reason string
	err    error
}

func (f fixed) Authorize(context.Context, Attributes) (Decision, string, error) {
	return f.d, f.reason, f.err
}

func TestChain(t *testing.T) {
	masters := &User{Name: "admin", Groups: []string{GroupMasters, GroupAuthenticated}}
	bob := &User{Name: "bob", Groups: []string{GroupAuthenticated}}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		chain  Chain
		user   *User
		want   Decision
		reason string
		err    bool
	}{
		{"masters", Chain{PrivilegedGroups{GroupMasters}, fixed{d: DecisionDeny}}, masters, DecisionAllow, "", false},
		{"others go on", Chain{PrivilegedGroups{GroupMasters}, fixed{d: DecisionAllow, reason: "ok"}}, bob, DecisionAllow, "ok", false},
		{"no user", Chain{PrivilegedGroups{GroupMasters}}, nil, DecisionNoOpinion, "", false},
		{"reasons joined", Chain{fixed{d: DecisionNoOpinion, reason: "a"}, fixed{d: DecisionNoOpinion}, fixed{d: DecisionNoOpinion, reason: "b"}},
			bob, DecisionNoOpinion, "a\nb", false},
		{"deny stops", Chain{fixed{d: DecisionDeny, reason: "no"}, fixed{d: DecisionAllow}}, bob, DecisionDeny, "no", false},
		{"errors aggregated", Chain{fixed{d: DecisionNoOpinion, err: boom}, fixed{d: DecisionNoOpinion}}, bob, DecisionNoOpinion, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := tc.chain.Authorize(context.Background(), Attributes{User: tc.user, Verb: "get", Path: "/x"})
			if d != tc.want || reason != tc.reason || (err != nil) != tc.err {
				t.Errorf("Authorize = %v, %q, %v; want %v, %q, error %v", d, reason, err, tc.want, tc.reason, tc.err)
			}
		})
	}
}

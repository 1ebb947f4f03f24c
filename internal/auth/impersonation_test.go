package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// allowResources allows impersonate on the listed resources only.
type allowResources []string

func (a allowResources) Authorize(_ context.Context, attrs Attributes) (Decision, string, error) {
	if attrs.Verb == "impersonate" && slices.Contains(a, attrs.Resource) {
		return DecisionAllow, "", nil
	}
	return DecisionNoOpinion, "", nil
}

func TestWithImpersonation(t *testing.T) {
	alice := &User{Name: "alice", Groups: []string{GroupAuthenticated}}
	for _, tc := range []struct {
		name    string
		allowed allowResources
		headers map[string][]string
		code    int
		user    *User
		message string
	}{
		{"no headers", nil, nil, 200, alice, ""},
		{"user", allowResources{"users"}, map[string][]string{"Impersonate-User": {"bob"}}, 200,
			&User{Name: "bob", Groups: []string{GroupAuthenticated}}, ""},
		{"user refused", allowResources{"groups"}, map[string][]string{"Impersonate-User": {"bob"}}, 403, nil,
			`users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope`},
		{"service account", allowResources{"serviceaccounts"}, map[string][]string{"Impersonate-User": {"system:serviceaccount:ns1:robot"}}, 200,
			&User{Name: "system:serviceaccount:ns1:robot", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns1", GroupAuthenticated}}, ""},
		{"service account refused", allowResources{"users"}, map[string][]string{"Impersonate-User": {"system:serviceaccount:ns1:robot"}}, 403, nil,
			`serviceaccounts "robot" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "ns1"`},
		{"groups, uid and extra", allowResources{"users", "groups", "uids", "userextras"}, map[string][]string{
			"Impersonate-User": {"bob"}, "Impersonate-Group": {"devs", "ops"}, "Impersonate-Uid": {"u-1"}, "Impersonate-Extra-Scopes": {"a", "b"}}, 200,
			&User{Name: "bob", UID: "u-1", Groups: []string{"devs", "ops", GroupAuthenticated}, Extra: map[string][]string{"scopes": {"a", "b"}}}, ""},
		{"group refused", allowResources{"users"}, map[string][]string{"Impersonate-User": {"bob"}, "Impersonate-Group": {"devs"}}, 403, nil,
			`groups "devs" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope`},
		{"group without user", allowResources{"groups"}, map[string][]string{"Impersonate-Group": {"devs"}}, 400, nil, "without impersonating a user"},
		{"anonymous", allowResources{"users"}, map[string][]string{"Impersonate-User": {"system:anonymous"}}, 200,
			&User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *User
			h := WithImpersonation(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = UserFrom(r.Context())
				for name := range r.Header {
					if strings.HasPrefix(name, "Impersonate-") {
						t.Errorf("header %s reached the handler", name)
					}
				}
			}), tc.allowed)
			r := httptest.NewRequest("GET", "/api/v1/pods", nil)
			for k, v := range tc.headers {
				r.Header[k] = v
			}
			r = r.WithContext(WithUser(r.Context(), alice))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			var status metav1.Status
			if tc.code != 200 {
				if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil || int(status.Code) != tc.code {
					t.Fatalf("body %s: %v", w.Body, err)
				}
			}
			if !strings.Contains(status.Message, tc.message) {
				t.Errorf("message %q, want %q", status.Message, tc.message)
			}
			if tc.user != nil && (got == nil || got.Name != tc.user.Name || got.UID != tc.user.UID ||
				!slices.Equal(got.Groups, tc.user.Groups) || len(got.Extra) != len(tc.user.Extra) ||
				!slices.Equal(got.Extra["scopes"], tc.user.Extra["scopes"])) {
				t.Errorf("user %+v, want %+v", got, tc.user)
			}
		})
	}
}

package rbac_test

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/test/framework"
)

// TestReviews checks the review kinds and what kubectl builds on them
// (auth can-i, auth whoami) and impersonation.
func TestReviews(t *testing.T) {
	s := startServer(t)
	cs := s.Clientset()
	ns := framework.NewNamespace(t, cs, "reviews")
	erin := addUser(t, s, "erin", "devs")
	check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "devs-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "devs"}},
	}, metaCreate))
	eventually(t, "the binding takes effect", func(c context.Context) (bool, error) {
		_, err := erin.cs.CoreV1().Pods(ns).List(c, metav1.ListOptions{})
		return err == nil, nil
	})

	// As upstream's "[sig-auth] SubjectReview should support SubjectReview
	// API operations": a SubjectAccessReview, a LocalSubjectAccessReview and
	// the user's own SelfSubjectAccessReview agree.
	t.Run("SubjectReviewAPIOperations", func(t *testing.T) {
		ra := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"}
		sar := check[*authorizationv1.SubjectAccessReview](t)(cs.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: "erin", Groups: []string{"devs"}, ResourceAttributes: ra}}, metaCreate))
		if !sar.Status.Allowed || !strings.Contains(sar.Status.Reason, `RoleBinding "devs-view/`+ns+`" of ClusterRole "view" to Group "devs"`) {
			t.Errorf("SubjectAccessReview status %+v", sar.Status)
		}
		lsar := check[*authorizationv1.LocalSubjectAccessReview](t)(cs.AuthorizationV1().LocalSubjectAccessReviews(ns).Create(ctx(t), &authorizationv1.LocalSubjectAccessReview{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns},
			Spec: authorizationv1.SubjectAccessReviewSpec{User: "erin", Groups: []string{"devs"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "pods"}}}, metaCreate))
		if lsar.Status.Allowed {
			t.Errorf("LocalSubjectAccessReview allowed delete: %+v", lsar.Status)
		}
		ssar := check[*authorizationv1.SelfSubjectAccessReview](t)(erin.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx(t), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra}}, metaCreate))
		if !ssar.Status.Allowed {
			t.Errorf("SelfSubjectAccessReview status %+v", ssar.Status)
		}
		// A review asking nothing is invalid.
		_, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: "erin"}}, metaCreate)
		if !apierrors.IsInvalid(err) {
			t.Errorf("empty SubjectAccessReview: %v", err)
		}
		// Reviews are created only.
		if _, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx(t), &authorizationv1.SubjectAccessReview{}, metav1.CreateOptions{DryRun: []string{"All"}}); err == nil {
			t.Errorf("an invalid dry-run review was accepted")
		}
		ssr := check[*authenticationv1.SelfSubjectReview](t)(erin.cs.AuthenticationV1().SelfSubjectReviews().Create(ctx(t), &authenticationv1.SelfSubjectReview{}, metaCreate))
		if ui := ssr.Status.UserInfo; ui.Username != "erin" || ui.UID != "uid-erin" {
			t.Errorf("SelfSubjectReview user %+v", ui)
		}
	})

	t.Run("KubectlAuthCanI", func(t *testing.T) {
		if out, _, err := erin.kubectl(s, "auth", "can-i", "list", "pods", "-n", ns); err != nil || strings.TrimSpace(out) != "yes" {
			t.Errorf("can-i list pods: %q %v", out, err)
		}
		if out, _, err := erin.kubectl(s, "auth", "can-i", "delete", "pods", "-n", ns); err == nil || strings.TrimSpace(out) != "no" {
			t.Errorf("can-i delete pods: %q %v", out, err)
		}
		out, _, err := erin.kubectl(s, "auth", "can-i", "--list", "-n", ns)
		if err != nil || !strings.Contains(out, "pods ") || !strings.Contains(out, "selfsubjectaccessreviews.authorization.k8s.io") {
			t.Errorf("can-i --list: %v\n%s", err, out)
		}
		// The admin asks for a service account, by impersonation.
		sa := "system:serviceaccount:" + ns + ":robot"
		if out, _, _ := s.Kubectl("auth", "can-i", "get", "configmaps", "-n", ns, "--as="+sa); strings.TrimSpace(out) != "no" {
			t.Errorf("can-i as %s before its binding: %q", sa, out)
		}
		check[*rbacv1.RoleBinding](t)(cs.RbacV1().RoleBindings(ns).Create(ctx(t), &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "robot-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "robot", Namespace: ns}},
		}, metaCreate))
		eventually(t, "can-i as the service account", func(context.Context) (bool, error) {
			out, _, _ := s.Kubectl("auth", "can-i", "get", "configmaps", "-n", ns, "--as="+sa)
			return strings.TrimSpace(out) == "yes", nil
		})
	})

	t.Run("KubectlAuthWhoami", func(t *testing.T) {
		out, _, err := erin.kubectl(s, "auth", "whoami")
		if err != nil || !strings.Contains(out, "erin") || !strings.Contains(out, "[devs system:authenticated]") {
			t.Errorf("whoami: %v\n%s", err, out)
		}
		out = s.MustKubectl(t, "auth", "whoami", "--as=frank", "--as-group=ops")
		if !strings.Contains(out, "frank") || !strings.Contains(out, "[ops system:authenticated]") {
			t.Errorf("whoami as frank:\n%s", out)
		}
	})

	t.Run("ImpersonationRefused", func(t *testing.T) {
		_, stderr, err := erin.kubectl(s, "get", "pods", "-n", ns, "--as=admin")
		want := `users "admin" is forbidden: User "erin" cannot impersonate resource "users" in API group "" at the cluster scope`
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("erin --as=admin: %v, stderr %q, want %q", err, stderr, want)
		}
	})
}

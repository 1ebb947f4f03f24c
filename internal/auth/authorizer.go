package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Attributes describes a request to be authorized, as Kubernetes does.
// ResourceRequest distinguishes a request for an API resource (Resource,
// Namespace, Name, ... are meaningful) from one for a plain path such as
// /healthz (Path is meaningful).
type Attributes struct {
	User            *User
	Verb            string
	APIGroup        string
	APIVersion      string
	Resource        string
	Subresource     string
	Namespace       string
	Name            string
	Path            string
	ResourceRequest bool
}

// Decision is an authorizer's verdict. The zero value is DecisionDeny.
type Decision int

const (
	// DecisionDeny forbids the request; no further authorizer is asked.
	DecisionDeny Decision = iota
	// DecisionAllow permits the request; no further authorizer is asked.
	DecisionAllow
	// DecisionNoOpinion leaves the request to the next authorizer. A
	// request no authorizer allows is forbidden.
	DecisionNoOpinion
)

func (d Decision) String() string {
	switch d {
	case DecisionDeny:
		return "Deny"
	case DecisionAllow:
		return "Allow"
	case DecisionNoOpinion:
		return "NoOpinion"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Authorizer decides whether a request may proceed. The reason, which may
// be empty, explains the decision to the client (see ForbiddenMessage). A
// non-nil error with any decision other than DecisionAllow means the
// authorizer could not decide; callers must then forbid the request.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (Decision, string, error)
}

// AuthenticatedAllower allows every request made by an authenticated user
// (one in GroupAuthenticated) and has no opinion on any other. It stands in
// until RBAC exists.
type AuthenticatedAllower struct{}

// Authorize implements Authorizer.
func (AuthenticatedAllower) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	if a.User.InGroup(GroupAuthenticated) {
		return DecisionAllow, "", nil
	}
	return DecisionNoOpinion, "", nil
}

// sanitizer escapes what could make an error message look like HTML, as
// kube-apiserver does.
var sanitizer = strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;")

// ForbiddenMessage returns the message kube-apiserver gives when it forbids
// a request, word for word, for example
//
//	pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"
//	nodes "n1" is forbidden: User "bob" cannot get resource "nodes" in API group "" at the cluster scope
//	forbidden: User "bob" cannot get path "/foo"
//
// with ": " and the reason appended when reason is not empty.
func ForbiddenMessage(a Attributes, reason string) string {
	user := ""
	if a.User != nil {
		user = a.User.Name
	}
	var msg string
	switch {
	case !a.ResourceRequest:
		msg = fmt.Sprintf("User %q cannot %s path %q", user, a.Verb, a.Path)
	default:
		resource := a.Resource
		if a.Subresource != "" {
			resource += "/" + a.Subresource
		}
		scope := "at the cluster scope"
		if a.Namespace != "" {
			scope = fmt.Sprintf("in the namespace %q", a.Namespace)
		}
		msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", user, a.Verb, resource, a.APIGroup, scope)
	}
	msg = sanitizer.Replace(msg)
	if reason != "" {
		msg += ": " + reason
	}

	// The prefix names the resource (without subresource) qualified by its
	// group, and the object if there is one, as apierrors.NewForbidden does.
	gr := forbiddenGroupResource(a)
	switch {
	case gr.Empty():
		return "forbidden: " + msg
	case a.Name == "":
		return fmt.Sprintf("%s is forbidden: %s", gr.String(), msg)
	default:
		return fmt.Sprintf("%s %q is forbidden: %s", gr.String(), a.Name, msg)
	}
}

func forbiddenGroupResource(a Attributes) schema.GroupResource {
	return schema.GroupResource{Group: a.APIGroup, Resource: a.Resource}
}

// NewForbidden returns the 403 error kube-apiserver returns when it forbids
// a request: reason Forbidden, the ForbiddenMessage, and details naming the
// group, resource and object.
func NewForbidden(a Attributes, reason string) *apierrors.StatusError {
	gr := forbiddenGroupResource(a)
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     http.StatusForbidden,
		Reason:   metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{
			Group: gr.Group,
			Kind:  gr.Resource,
			Name:  a.Name,
		},
		Message: ForbiddenMessage(a, reason),
	}}
}

// PrivilegedGroups allows every request of a user in one of its groups and
// has no opinion on any other, as kube-apiserver's authorizer for
// system:masters, which no RBAC object can restrict.
type PrivilegedGroups []string

// Authorize implements Authorizer.
func (p PrivilegedGroups) Authorize(_ context.Context, a Attributes) (Decision, string, error) {
	for _, g := range p {
		if a.User.InGroup(g) {
			return DecisionAllow, "", nil
		}
	}
	return DecisionNoOpinion, "", nil
}

// Chain asks its authorizers in order, as kube-apiserver's union
// authorizer: the first DecisionAllow or DecisionDeny is the chain's; with
// none, the request is left with no opinion (which the server forbids),
// the reasons given joined by newlines and the errors aggregated.
type Chain []Authorizer

// Authorize implements Authorizer.
func (c Chain) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	var (
		reasons []string
		errs    []error
	)
	for _, z := range c {
		d, reason, err := z.Authorize(ctx, a)
		if err != nil {
			errs = append(errs, err)
		}
		if reason != "" {
			reasons = append(reasons, reason)
		}
		if d != DecisionNoOpinion {
			return d, reason, err
		}
	}
	return DecisionNoOpinion, strings.Join(reasons, "\n"), errors.Join(errs...)
}

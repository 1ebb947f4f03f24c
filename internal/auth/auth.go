// Package auth answers "who is making this request?" (authentication) and
// defines the seam through which "may they do this?" (authorization) is
// asked, for Havre's API server.
//
// Authenticators here are client certificates verified by the TLS layer
// against the cluster CA (X509) and static bearer tokens from a CSV file in
// kube-apiserver's --token-auth-file format (TokenFile), combined in order by
// Union. WithAuthentication is the HTTP middleware that rejects
// unauthenticated requests with a Kubernetes 401 Status and puts the User in
// the request context. WithImpersonation lets a user act as another
// (Impersonate-* headers) when allowed to. Authorizer is the seam the
// server's authorizers (PrivilegedGroups, then RBAC in package rbac) plug
// into, combined by Chain.
//
// This package must never import k8s.io/apiserver, never issue or store
// certificates (package pki does), never log or echo a credential, and never
// compare a secret in variable time.
package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// Well-known user and group names.
const (
	// GroupAuthenticated is added to every authenticated user.
	GroupAuthenticated = "system:authenticated"
	// GroupMasters is the group of the admin user; RBAC grants it all.
	GroupMasters = "system:masters"
	// GroupBootstrappers is the group of the cluster join token.
	GroupBootstrappers = "system:bootstrappers"
	// JoinTokenUser is the user the cluster join token authenticates as.
	JoinTokenUser = "havre:node-bootstrap"
)

// User is an authenticated identity. A User reached through UserFrom must
// be treated as read-only.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// InGroup reports whether the user is a member of group.
func (u *User) InGroup(group string) bool {
	return u != nil && slices.Contains(u.Groups, group)
}

// withAuthenticatedGroup adds GroupAuthenticated to u unless present.
func withAuthenticatedGroup(u *User) *User {
	if !u.InGroup(GroupAuthenticated) {
		u.Groups = append(u.Groups, GroupAuthenticated)
	}
	return u
}

// Authenticator identifies the user behind a request. It returns ok false
// with a nil error when the request carries no credential it understands,
// and ok false with an error when it carries one that is invalid. The User
// returned belongs to the caller, who may modify it. Every user returned
// with ok true by this package's authenticators is in GroupAuthenticated.
type Authenticator interface {
	Authenticate(r *http.Request) (user *User, ok bool, err error)
}

// Union tries its authenticators in order and returns the first user one of
// them authenticates. If none does, it returns the errors they reported,
// joined, or none if all found nothing to check.
type Union []Authenticator

// Authenticate implements Authenticator.
func (u Union) Authenticate(r *http.Request) (*User, bool, error) {
	var errs []error
	for _, a := range u {
		user, ok, err := a.Authenticate(r)
		if ok && user != nil {
			return withAuthenticatedGroup(user), true, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return nil, false, errors.Join(errs...)
}

type userKey struct{}

// WithUser returns a copy of ctx carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user WithUser put in ctx, if any.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

package auth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Impersonation headers, as kube-apiserver's.
const (
	ImpersonateUserHeader            = authenticationv1.ImpersonateUserHeader
	ImpersonateGroupHeader           = authenticationv1.ImpersonateGroupHeader
	ImpersonateUIDHeader             = authenticationv1.ImpersonateUIDHeader
	ImpersonateUserExtraHeaderPrefix = authenticationv1.ImpersonateUserExtraHeaderPrefix
)

const serviceAccountPrefix = "system:serviceaccount:"

// impersonation is one thing a request asks to act as, and the attributes
// of the "impersonate" request that must be allowed for it.
type impersonation struct {
	attrs Attributes
}

// WithImpersonation lets an authenticated user act as another, as
// kube-apiserver does: Impersonate-User (a user, or a service account by
// its system:serviceaccount:NS:NAME name), Impersonate-Group (repeatable),
// Impersonate-Uid and Impersonate-Extra-<key> each need the impersonate
// verb on users, serviceaccounts, groups, uids.authentication.k8s.io or
// userextras.authentication.k8s.io/<key>. The request then proceeds as the
// impersonated user, without the headers; a refusal is kube-apiserver's 403.
func WithImpersonation(next http.Handler, a Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs, err := impersonations(r.Header)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		if len(reqs) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		requestor, ok := UserFrom(r.Context())
		if !ok {
			writeStatus(w, apierrors.NewBadRequest("impersonation needs an authenticated user"))
			return
		}
		groupsSpecified := len(r.Header[ImpersonateGroupHeader]) > 0
		imp := &User{Groups: []string{}}
		for _, req := range reqs {
			attrs := req.attrs
			attrs.User = requestor
			switch attrs.Resource {
			case "serviceaccounts":
				imp.Name = serviceAccountPrefix + attrs.Namespace + ":" + attrs.Name
				if !groupsSpecified {
					imp.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + attrs.Namespace}
				}
			case "users":
				imp.Name = attrs.Name
			case "groups":
				imp.Groups = append(imp.Groups, attrs.Name)
			case "userextras":
				if imp.Extra == nil {
					imp.Extra = map[string][]string{}
				}
				imp.Extra[attrs.Subresource] = append(imp.Extra[attrs.Subresource], attrs.Name)
			case "uids":
				imp.UID = attrs.Name
			}
			d, reason, err := a.Authorize(r.Context(), attrs)
			if err != nil || d != DecisionAllow {
				writeStatus(w, NewForbidden(attrs, reason))
				return
			}
		}
		if imp.Name != "system:anonymous" {
			if !containsAny(imp.Groups, GroupAuthenticated, "system:unauthenticated") {
				imp.Groups = append(imp.Groups, GroupAuthenticated)
			}
		} else if !containsAny(imp.Groups, "system:unauthenticated") {
			imp.Groups = append(imp.Groups, "system:unauthenticated")
		}
		slog.Debug("impersonation", "user", requestor.Name, "as", imp.Name, "groups", imp.Groups)
		r = r.WithContext(WithUser(r.Context(), imp))
		r.Header = r.Header.Clone()
		for name := range r.Header {
			if name == ImpersonateUserHeader || name == ImpersonateGroupHeader || name == ImpersonateUIDHeader ||
				strings.HasPrefix(name, ImpersonateUserExtraHeaderPrefix) {
				r.Header.Del(name)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func containsAny(list []string, values ...string) bool {
	for _, v := range list {
		for _, w := range values {
			if v == w {
				return true
			}
		}
	}
	return false
}

// impersonations reads the impersonation headers, as upstream's
// buildImpersonationRequests.
func impersonations(h http.Header) ([]impersonation, error) {
	var reqs []impersonation
	userName := h.Get(ImpersonateUserHeader)
	hasUser := userName != ""
	if hasUser {
		if ns, name, ok := splitServiceAccount(userName); ok {
			reqs = append(reqs, impersonation{Attributes{Verb: "impersonate", APIVersion: "v1", Resource: "serviceaccounts",
				Namespace: ns, Name: name, ResourceRequest: true}})
		} else {
			reqs = append(reqs, impersonation{Attributes{Verb: "impersonate", Resource: "users", Name: userName, ResourceRequest: true}})
		}
	}
	others := false
	for _, g := range h[ImpersonateGroupHeader] {
		others = true
		reqs = append(reqs, impersonation{Attributes{Verb: "impersonate", Resource: "groups", Name: g, ResourceRequest: true}})
	}
	for name, values := range h {
		if !strings.HasPrefix(name, ImpersonateUserExtraHeaderPrefix) {
			continue
		}
		others = true
		key := strings.ToLower(name[len(ImpersonateUserExtraHeaderPrefix):])
		if k, err := url.PathUnescape(key); err == nil {
			key = k
		}
		for _, v := range values {
			reqs = append(reqs, impersonation{Attributes{Verb: "impersonate", APIGroup: authenticationv1.GroupName, APIVersion: "v1",
				Resource: "userextras", Subresource: key, Name: v, ResourceRequest: true}})
		}
	}
	if uid := h.Get(ImpersonateUIDHeader); uid != "" {
		others = true
		reqs = append(reqs, impersonation{Attributes{Verb: "impersonate", APIGroup: authenticationv1.GroupName, APIVersion: "v1",
			Resource: "uids", Name: uid, ResourceRequest: true}})
	}
	if others && !hasUser {
		var what []string
		for _, r := range reqs {
			what = append(what, r.attrs.Resource+"/"+r.attrs.Name)
		}
		return nil, fmt.Errorf("requested %v without impersonating a user", what)
	}
	return reqs, nil
}

// splitServiceAccount splits system:serviceaccount:NS:NAME.
func splitServiceAccount(user string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(user, serviceAccountPrefix)
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// writeStatus writes an API error as a metav1.Status JSON body.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	body, merr := json.Marshal(err.ErrStatus)
	if merr != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(err.ErrStatus.Code))
	_, _ = w.Write(append(body, '\n'))
}

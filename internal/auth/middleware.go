package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WithAuthentication authenticates every request with a before handing it
// to next, with the User in its context (see UserFrom) and its
// Authorization header removed, so that no handler can leak or reuse the
// credential.
//
// A request that is not authenticated gets a 401 and a metav1.Status JSON
// body, as from kube-apiserver, unless its URL path is exactly one of
// anonymousPaths (for example /livez, /readyz, /healthz, /version): such a
// request is passed on without a user when its credentials are missing or
// invalid, and with its user when they are valid.
func WithAuthentication(next http.Handler, a Authenticator, anonymousPaths []string) http.Handler {
	if next == nil || a == nil {
		panic("auth: WithAuthentication needs a handler and an authenticator")
	}
	anonymous := make(map[string]bool, len(anonymousPaths))
	for _, p := range anonymousPaths {
		anonymous[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := a.Authenticate(r)
		if !ok || u == nil {
			if !anonymous[r.URL.Path] {
				if err != nil {
					slog.Info("auth: unable to authenticate request",
						"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
				}
				writeUnauthorized(w)
				return
			}
			u = nil
		}
		ctx := r.Context()
		if u != nil {
			ctx = WithUser(ctx, withAuthenticatedGroup(u))
		}
		r = r.WithContext(ctx)
		if _, has := r.Header["Authorization"]; has {
			// WithContext shares the header map with the caller's request.
			r.Header = r.Header.Clone()
			r.Header.Del("Authorization")
		}
		next.ServeHTTP(w, r)
	})
}

var unauthorizedBody = func() []byte {
	b, err := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  "Unauthorized",
		Reason:   metav1.StatusReasonUnauthorized,
		Code:     http.StatusUnauthorized,
	})
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}()

func writeUnauthorized(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(unauthorizedBody)
}

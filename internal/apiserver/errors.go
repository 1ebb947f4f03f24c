package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func errNotAcceptable(accept string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: fmt.Sprintf("only the following media types are accepted: %s", strings.Join(acceptedMediaTypes(), ", ")),
	}}
}

func errUnsupportedMediaType(ct string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s", strings.Join(acceptedMediaTypes(), ", ")),
	}}
}

func acceptedMediaTypes() []string {
	var out []string
	for _, info := range codecs.SupportedMediaTypes() {
		out = append(out, info.MediaType)
	}
	return out
}

// toStatus turns any error into a metav1.Status. Errors that are not already
// API errors are internal errors: they are logged, and the client sees a 500
// without internals.
func toStatus(err error) metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		st.Status = metav1.StatusFailure
		if st.Code == 0 {
			st.Code = http.StatusInternalServerError
		}
		return st
	}
	slog.Error("internal error", "err", err)
	return apierrors.NewInternalError(err).ErrStatus
}

// writeError writes err as a metav1.Status in JSON, which every client
// decodes whatever it asked for.
func writeError(w http.ResponseWriter, err error) {
	st := toStatus(err)
	st.Kind = "Status"
	st.APIVersion = "v1"
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
	}
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(body)
}

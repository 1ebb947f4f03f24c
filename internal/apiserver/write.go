package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxBodyBytes bounds request bodies, as kube-apiserver's 3 MiB limit does.
const maxBodyBytes = 3 * 1024 * 1024

// readBody reads the request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(body) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBodyBytes))
	}
	return body, nil
}

// decodeBody decodes the request body as an object of kind gvk, checking
// for unknown and duplicate fields as fieldValidation asks (Strict: a 400,
// Warn: Warning headers, Ignore: nothing).
func decodeBody(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind, into runtime.Object, validation string) (runtime.Object, error) {
	info, err := negotiateInput(r)
	if err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	decoder := info.Serializer
	if strict, ok := strictSerializerFor(info.MediaType); ok && validation != "Ignore" {
		decoder = strict
	}
	obj, got, err := decoder.Decode(body, &gvk, into)
	if err = fieldValidationError(w, gvk, err, validation); err != nil {
		return nil, err
	}
	if got != nil && (got.Group != gvk.Group || got.Version != gvk.Version) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf(
			"the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
	}
	if got != nil && got.Kind != gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf(
			"the kind in the data (%s) does not match the expected kind (%s)", got.Kind, gvk.Kind))
	}
	return obj, nil
}

// fieldValidationError turns a strict decoding error into a 400 (Strict)
// or Warning headers (Warn); other decoding errors are 400s.
func fieldValidationError(w http.ResponseWriter, gvk schema.GroupVersionKind, err error, validation string) error {
	if err == nil {
		return nil
	}
	strict, ok := runtime.AsStrictDecodingError(err)
	if !ok {
		return apierrors.NewBadRequest(err.Error())
	}
	if validation == "Strict" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, err))
	}
	for _, e := range strict.Errors() {
		addWarning(w, e.Error())
	}
	return nil
}

// addWarning adds an RFC 7234 Warning header, which kubectl prints as
// "Warning: ...".
func addWarning(w http.ResponseWriter, text string) {
	w.Header().Add("Warning", "299 - "+strconv.Quote(text))
}

// writeObject encodes obj in the negotiated format with the given status.
func writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	out, err := negotiateOutput(r)
	if err == nil && isUnstructured(obj) && !out.table && !out.metadata && out.info.MediaType == mediaProtobuf {
		out, err = negotiateOutputJSONOrYAML(r)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	switch {
	case out.table:
		t, err := toTable(obj, tableOptions(r, out))
		if err != nil {
			writeError(w, err)
			return
		}
		obj = t
	case out.metadata:
		if obj, err = toPartialMetadata(obj); err != nil {
			writeError(w, err)
			return
		}
	}
	gv, err := groupVersionOf(obj)
	if err != nil {
		writeError(w, err)
		return
	}
	var buf bytes.Buffer
	if err := encoderFor(out.info.Serializer, obj, gv).Encode(obj, &buf); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", out.info.MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// groupVersionOf returns the group/version obj is served in. Types that
// live in every group (Status, Table, lists of metadata) are served in their
// canonical version.
func groupVersionOf(obj runtime.Object) (schema.GroupVersion, error) {
	switch obj.(type) {
	case *metav1.Status:
		return metaV1, nil
	case *metav1.Table, *metav1.PartialObjectMetadata, *metav1.PartialObjectMetadataList:
		return metav1.SchemeGroupVersion, nil
	}
	gvks, _, err := apiScheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return schema.GroupVersion{}, fmt.Errorf("no kind for %T: %v", obj, err)
	}
	return gvks[0].GroupVersion(), nil
}

// statusSuccess is the body of a successful delete or subresource create.
func statusSuccess(gr schema.GroupResource, obj runtime.Object) *metav1.Status {
	st := &metav1.Status{Status: metav1.StatusSuccess}
	if acc, err := meta.Accessor(obj); err == nil && obj != nil {
		st.Details = &metav1.StatusDetails{Name: acc.GetName(), Group: gr.Group, Kind: gr.Resource, UID: acc.GetUID()}
	}
	return st
}

func isDryRun(r *http.Request) (bool, error) {
	values := r.URL.Query()["dryRun"]
	for _, v := range values {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("unsupported dryRun value %q: only %q is supported", v, metav1.DryRunAll))
		}
	}
	return len(values) > 0, nil
}

// now is the server's clock for timestamps, truncated to seconds as
// Kubernetes stores them.
func now() metav1.Time {
	return metav1.NewTime(time.Now().Truncate(time.Second))
}

// requestContext bounds non-watch requests.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 60*time.Second)
}

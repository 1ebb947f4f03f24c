package apiserver

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"
)

var supportedPatchTypes = []string{
	string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType), string(types.ApplyYAMLPatchType),
}

// patcher applies one PATCH request body to objects of one kind.
type patcher struct {
	typ  types.PatchType
	body []byte
	gvk  schema.GroupVersionKind
	// newObj returns an empty object of the kind, for strategic merge
	// metadata and for decoding.
	newObj func() runtime.Object
	// validation and w: fieldValidation of the patched object.
	validation string
	w          http.ResponseWriter
	// afterDecode checks a patched object beyond decoding (custom
	// resources' unknown fields).
	afterDecode func(w http.ResponseWriter, obj runtime.Object, validation string) error
}

// newPatcher returns the patcher of a PATCH of the handler's resource.
// Custom resources take no strategic merge patches, as upstream.
func (h *resourceHandler) newPatcher(w http.ResponseWriter, r *http.Request, validation string) (*patcher, error) {
	p, err := newPatcher(w, r, h.res.GroupVersionKind(), h.objs.newObject, validation)
	if err != nil || h.custom == nil {
		return p, err
	}
	if p.typ == types.StrategicMergePatchType {
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %v",
				[]string{string(types.JSONPatchType), string(types.MergePatchType), string(types.ApplyYAMLPatchType)}),
		}}
	}
	p.afterDecode = h.custom.checkUnknownFields
	return p, nil
}

func newPatcher(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind, newObj func() runtime.Object, validation string) (*patcher, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = r.Header.Get("Content-Type")
	}
	typ := types.PatchType(mt)
	switch typ {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
	default:
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
			Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %v", supportedPatchTypes),
		}}
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	p := &patcher{typ: typ, body: body, gvk: gvk, newObj: newObj, validation: validation, w: w}
	switch {
	case typ == types.ApplyYAMLPatchType:
		if p.body, err = yaml.YAMLToJSON(body); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
		}
	case typ == types.JSONPatchType:
		if _, err := jsonpatch.DecodePatch(body); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case !json.Valid(body):
		return nil, apierrors.NewBadRequest("error decoding patch: invalid JSON document")
	}
	return p, nil
}

// apply patches cur and returns the result as a new typed object. When the
// patch does not itself name a resourceVersion, the result carries none, so
// that the write retries on concurrent changes instead of conflicting.
func (p *patcher) apply(cur runtime.Object) (runtime.Object, error) {
	cur = cur.DeepCopyObject()
	cur.GetObjectKind().SetGroupVersionKind(p.gvk)
	curJSON, err := json.Marshal(cur)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch p.typ {
	case types.JSONPatchType:
		patch, _ := jsonpatch.DecodePatch(p.body)
		patched, err = patch.Apply(curJSON)
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(curJSON, p.body)
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(curJSON, p.body, p.newObj())
	}
	if err != nil {
		if p.typ == types.JSONPatchType {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	gvk := p.gvk
	decoder := codecs.UniversalDeserializer()
	if strict, ok := strictSerializerFor(mediaJSON); ok && p.validation != "Ignore" {
		decoder = strict
	}
	obj, got, err := decoder.Decode(patched, &gvk, p.newObj())
	if err = fieldValidationError(p.w, p.gvk, err, p.validation); err != nil {
		return nil, err
	}
	if p.afterDecode != nil {
		if err := p.afterDecode(p.w, obj, p.validation); err != nil {
			return nil, err
		}
	}
	if got.GroupVersion() != p.gvk.GroupVersion() || got.Kind != p.gvk.Kind {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch may not change the kind or apiVersion (from %s to %s)", p.gvk, got))
	}
	acc, _ := meta.Accessor(obj)
	curAcc, _ := meta.Accessor(cur)
	if acc.GetName() != curAcc.GetName() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", acc.GetName(), curAcc.GetName()))
	}
	if acc.GetNamespace() != curAcc.GetNamespace() {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if acc.GetResourceVersion() == curAcc.GetResourceVersion() {
		acc.SetResourceVersion("")
	}
	return obj, nil
}

func nameOf(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return acc.GetName()
}

package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/havre/havre/internal/storage"
)

var parameterCodec = runtime.NewParameterCodec(apiScheme)

// listOptions reads ListOptions from the query.
func listOptions(r *http.Request) (metav1.ListOptions, error) {
	var opts metav1.ListOptions
	if err := parameterCodec.DecodeParameters(r.URL.Query(), metaV1, &opts); err != nil {
		return opts, apierrors.NewBadRequest(err.Error())
	}
	return opts, nil
}

// predicate filters objects by label and field selectors.
type predicate struct {
	label labels.Selector
	field fields.Selector
	h     *resourceHandler
}

func (h *resourceHandler) predicate(opts metav1.ListOptions) (predicate, error) {
	p := predicate{label: labels.Everything(), field: fields.Everything(), h: h}
	if opts.LabelSelector != "" {
		sel, err := labels.Parse(opts.LabelSelector)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		p.label = sel
	}
	if opts.FieldSelector != "" {
		sel, err := fields.ParseSelector(opts.FieldSelector)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		known := h.fieldSet(h.objs.newObject())
		for _, req := range sel.Requirements() {
			if _, ok := known[req.Field]; !ok {
				return p, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
			}
		}
		p.field = sel
	}
	return p, nil
}

func (p predicate) empty() bool { return p.label.Empty() && p.field.Empty() }

func (p predicate) matches(obj runtime.Object) bool {
	if p.empty() {
		return true
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	if !p.label.Matches(labels.Set(acc.GetLabels())) {
		return false
	}
	return p.field.Empty() || p.field.Matches(p.h.fieldSet(obj))
}

// fieldSet is the object's field-selector view.
func (h *resourceHandler) fieldSet(obj runtime.Object) fields.Set {
	set := h.res.Strategy.SelectableFields(obj)
	if set == nil {
		set = fields.Set{}
	}
	acc, err := meta.Accessor(obj)
	if err == nil {
		set["metadata.name"] = acc.GetName()
		if h.res.Namespaced {
			set["metadata.namespace"] = acc.GetNamespace()
		}
	}
	return set
}

// continueToken is the opaque position of a paginated list.
type continueToken struct {
	Revision int64  `json:"rv"`
	Start    string `json:"start"`
}

func encodeContinue(rev int64, start string) string {
	b, _ := json.Marshal(continueToken{Revision: rev, Start: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s, prefix string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Revision <= 0 || !strings.HasPrefix(t.Start, prefix) {
		return t, apierrors.NewBadRequest("continue key is not valid")
	}
	return t, nil
}

func parseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	return n, nil
}

func (h *resourceHandler) serveList(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	defer cancel()
	opts, err := listOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := h.list(ctx, info.namespace, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeObject(w, r, http.StatusOK, list)
}

// list serves a list with selectors, resourceVersion semantics and
// limit/continue pagination.
func (h *resourceHandler) list(ctx context.Context, namespace string, opts metav1.ListOptions) (runtime.Object, error) {
	pred, err := h.predicate(opts)
	if err != nil {
		return nil, err
	}
	prefix := h.objs.listPrefix(namespace)
	rv, err := parseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	var rev int64
	start := ""
	switch {
	case opts.Continue != "":
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		tok, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, err
		}
		rev, start = tok.Revision, tok.Start
	case opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact:
		if rv == 0 {
			return nil, apierrors.NewBadRequest("resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"")
		}
		rev = rv
	case opts.ResourceVersionMatch == metav1.ResourceVersionMatchNotOlderThan, opts.ResourceVersionMatch == "":
		if opts.ResourceVersionMatch != "" && opts.ResourceVersion == "" {
			return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
		}
		if rv > 0 {
			if err := h.srv.waitForRevision(ctx, rv); err != nil {
				return nil, err
			}
		}
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unsupported resourceVersionMatch %q", opts.ResourceVersionMatch))
	}

	limit := opts.Limit
	var items []runtime.Object
	next := ""
	for {
		page := limit
		if page > 0 && !pred.empty() {
			page = max(page, 256)
		}
		res, err := h.objs.store.List(ctx, prefix, storage.ListOptions{Revision: rev, Limit: page, StartKey: start})
		if err != nil {
			if opts.Continue != "" && apierrors.IsResourceExpired(h.objs.storageError(err, "")) {
				return nil, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			return nil, h.objs.storageError(err, "")
		}
		rev = res.Revision
		decoded, err := h.objs.decodePage(res.KVs)
		if err != nil {
			return nil, err
		}
		for i, kv := range res.KVs {
			var obj runtime.Object
			if decoded != nil {
				obj = decoded[i]
			} else if obj, err = h.objs.decode(kv); err != nil {
				return nil, err
			}
			if !pred.matches(obj) {
				continue
			}
			items = append(items, obj)
			if limit > 0 && int64(len(items)) == limit {
				if i < len(res.KVs)-1 || res.More {
					next = kv.Key + "\x00"
				}
				break
			}
		}
		if next != "" || !res.More || (limit > 0 && int64(len(items)) == limit) {
			break
		}
		start = res.KVs[len(res.KVs)-1].Key + "\x00"
	}

	list, err := h.objs.newList()
	if err != nil {
		return nil, err
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, err
	}
	lacc, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lacc.SetResourceVersion(strconv.FormatInt(rev, 10))
	if next != "" {
		lacc.SetContinue(encodeContinue(rev, next))
	}
	return list, nil
}

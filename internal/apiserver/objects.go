package apiserver

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/storage"
)

// maxObjectBytes is the largest object the store accepts, as etcd's default
// request limit does for Kubernetes.
const maxObjectBytes = 3 * 1024 * 1024 / 2

// objects is the typed view of one resource in the store: it maps names to
// keys and objects to bytes, and turns storage errors into API errors.
type objects struct {
	res    *registry.Resource
	store  storage.Store
	prefix string
	gr     schema.GroupResource
	typ    reflect.Type
	// conv, when set, stores this resource as another one's type.
	conv *storageConversion
	// custom, for custom resources: objects are unstructured, stored as
	// JSON in the definition's storage version.
	custom *customResource
}

// storeAs makes o keep its objects in other's keys, in other's type.
func (o *objects) storeAs(other *objects, to, from func(runtime.Object) runtime.Object) {
	o.prefix = other.prefix
	o.conv = &storageConversion{storage: other, toStore: to, fromStor: from}
}

func newObjects(res *registry.Resource, s storage.Store) (*objects, error) {
	obj, err := apiScheme.New(res.GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", res.GroupVersionResource, err)
	}
	group := res.Group
	if group == "" {
		group = "core"
	}
	return &objects{
		res:    res,
		store:  s,
		prefix: "/registry/" + group + "/" + res.Resource + "/",
		gr:     res.GroupResource(),
		typ:    reflect.TypeOf(obj).Elem(),
	}, nil
}

func (o *objects) newObject() runtime.Object {
	if o.custom != nil {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(o.custom.gvk)
		return u
	}
	return reflect.New(o.typ).Interface().(runtime.Object)
}

// newList returns an empty list of the resource.
func (o *objects) newList() (runtime.Object, error) {
	if o.custom != nil {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(o.custom.gvk.GroupVersion().WithKind(o.custom.crd.Status.AcceptedNames.ListKind))
		return l, nil
	}
	return apiScheme.New(o.res.ListGroupVersionKind())
}

func (o *objects) key(namespace, name string) string {
	if o.res.Namespaced {
		return o.prefix + namespace + "/" + name
	}
	return o.prefix + name
}

// listPrefix is the key prefix of all objects in namespace ("" for all).
func (o *objects) listPrefix(namespace string) string {
	if o.res.Namespaced && namespace != "" {
		return o.prefix + namespace + "/"
	}
	return o.prefix
}

func (o *objects) decode(kv storage.KeyValue) (runtime.Object, error) {
	if o.custom != nil {
		obj, err := o.decodeCustomResource(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		return obj, nil
	}
	if o.conv != nil {
		obj, err := o.conv.storage.decode(kv)
		if err != nil {
			return nil, err
		}
		return o.conv.fromStor(obj), nil
	}
	obj, _, err := storageSerializer.Decode(kv.Value, nil, o.newObject())
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
	}
	if err := setResourceVersion(obj, kv.ModRevision); err != nil {
		return nil, err
	}
	return obj, nil
}

// decodePage decodes a page of stored custom resources whose definition
// converts by webhook in one request; for other resources it returns nil
// (objects are decoded one by one, as far as a list needs them).
func (o *objects) decodePage(kvs []storage.KeyValue) ([]runtime.Object, error) {
	if o.custom == nil || o.custom.converter == nil || len(kvs) < 2 {
		return nil, nil
	}
	return o.decodeCustomResources(kvs)
}

func (o *objects) encode(obj runtime.Object) ([]byte, error) {
	if o.custom != nil {
		return o.encodeCustomResource(obj)
	}
	if o.conv != nil {
		return o.conv.storage.encode(o.conv.toStore(obj))
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := acc.GetResourceVersion()
	acc.SetResourceVersion("")
	data, err := encodeStorage(obj, o.res.GroupVersion())
	acc.SetResourceVersion(rv)
	if err != nil {
		return nil, err
	}
	if len(data) > maxObjectBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(
			fmt.Sprintf("object is too large: %d bytes exceeds the limit of %d bytes", len(data), maxObjectBytes))
	}
	return data, nil
}

func (o *objects) get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	kv, err := o.store.Get(ctx, o.key(namespace, name))
	if err != nil {
		return nil, o.storageError(err, name)
	}
	return o.decode(kv)
}

func (o *objects) create(ctx context.Context, obj runtime.Object) (runtime.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	data, err := o.encode(obj)
	if err != nil {
		return nil, err
	}
	kv, err := o.store.Create(ctx, o.key(acc.GetNamespace(), acc.GetName()), data)
	if err != nil {
		return nil, o.storageError(err, acc.GetName())
	}
	return o.written(obj, data, kv.ModRevision)
}

// put writes obj over the stored version whose ModRevision is rev.
func (o *objects) put(ctx context.Context, obj runtime.Object, rev int64) (runtime.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	data, err := o.encode(obj)
	if err != nil {
		return nil, err
	}
	kv, err := o.store.Update(ctx, o.key(acc.GetNamespace(), acc.GetName()), data, rev)
	if err != nil {
		return nil, o.storageError(err, acc.GetName())
	}
	return o.written(obj, data, kv.ModRevision)
}

// written is obj as stored at rev: custom resources converted to their
// storage version on the way in are read back through the conversion, as
// upstream answers writes; other objects get their resourceVersion.
func (o *objects) written(obj runtime.Object, data []byte, rev int64) (runtime.Object, error) {
	if o.custom != nil && o.custom.convertsOnWrite() {
		return o.decodeCustomResource(data, rev)
	}
	if err := setResourceVersion(obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

// remove deletes the stored version whose ModRevision is rev.
func (o *objects) remove(ctx context.Context, namespace, name string, rev int64) (runtime.Object, error) {
	kv, err := o.store.Delete(ctx, o.key(namespace, name), rev)
	if err != nil {
		return nil, o.storageError(err, name)
	}
	return o.decode(kv)
}

// guaranteedUpdate reads the object, applies fn and writes the result,
// retrying on conflicts with concurrent writers. fn may return an API
// error to abort, or a nil object to write nothing. When fn sets a resourceVersion on the result that
// differs from the stored one, the write fails with a Conflict instead of
// retrying: the client asked for optimistic concurrency.
func (o *objects) guaranteedUpdate(ctx context.Context, namespace, name string,
	fn func(cur runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	for attempt := 0; ; attempt++ {
		kv, err := o.store.Get(ctx, o.key(namespace, name))
		if err != nil {
			return nil, o.storageError(err, name)
		}
		cur, err := o.decode(kv)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		if next == nil { // nothing to write
			return cur, nil
		}
		acc, err := meta.Accessor(next)
		if err != nil {
			return nil, err
		}
		if rv := acc.GetResourceVersion(); rv != "" && rv != strconv.FormatInt(kv.ModRevision, 10) {
			return nil, o.conflict(name)
		}
		out, err := o.put(ctx, next, kv.ModRevision)
		if apierrors.IsConflict(err) && acc.GetResourceVersion() == "" && attempt < 100 {
			continue
		}
		return out, err
	}
}

func (o *objects) conflict(name string) error {
	return apierrors.NewConflict(o.gr, name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// storageError maps storage errors to API errors.
func (o *objects) storageError(err error, name string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(o.gr, name)
	case errors.Is(err, storage.ErrKeyExists):
		return apierrors.NewAlreadyExists(o.gr, name)
	case errors.Is(err, storage.ErrConflict):
		return o.conflict(name)
	case errors.Is(err, storage.ErrCompacted):
		return apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
	case errors.Is(err, storage.ErrFutureRevision):
		return apierrors.NewTimeoutError("Too large resource version", 1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError("request did not complete in time", 1)
	}
	return err
}

func setResourceVersion(obj runtime.Object, rev int64) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	return nil
}

// structField returns obj's top-level struct field by name, if it has one.
func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid()
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src runtime.Object) {
	if d, ok := dst.(*unstructured.Unstructured); ok {
		if st, ok := src.(*unstructured.Unstructured).Object["status"]; ok {
			d.Object["status"] = runtime.DeepCopyJSONValue(st)
		} else {
			delete(d.Object, "status")
		}
		return
	}
	d, ok1 := structField(dst, "Status")
	s, ok2 := structField(src, "Status")
	if ok1 && ok2 {
		d.Set(s)
	}
}

// specChanged reports whether anything outside metadata and status differs.
func specChanged(a, b runtime.Object) bool {
	if ua, ok := a.(*unstructured.Unstructured); ok {
		ub := b.(*unstructured.Unstructured)
		for k, v := range ua.Object {
			if k != "metadata" && k != "status" && !apiequality.Semantic.DeepEqual(v, ub.Object[k]) {
				return true
			}
		}
		for k := range ub.Object {
			if _, ok := ua.Object[k]; !ok && k != "metadata" && k != "status" {
				return true
			}
		}
		return false
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := 0; i < va.NumField(); i++ {
		switch va.Type().Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !apiequality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return true
		}
	}
	return false
}

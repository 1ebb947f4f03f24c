package apiserver

import (
	"mime"
	"net/http"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// Media types the server speaks.
const (
	mediaJSON     = runtime.ContentTypeJSON
	mediaYAML     = runtime.ContentTypeYAML
	mediaProtobuf = runtime.ContentTypeProtobuf
)

// apiScheme holds every served type plus the meta.k8s.io types (Table,
// PartialObjectMetadata) that clients ask for as transformations.
var apiScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(apiregistrationv1.AddToScheme(s))
	utilruntime.Must(metav1.AddMetaToScheme(s))
	metav1.AddToGroupVersion(s, metaV1)
	return s
}()

var (
	// codecs serves the built-in types in JSON, YAML and protobuf; lists are
	// encoded streaming so large lists never sit twice in memory.
	codecs = serializer.NewCodecFactory(apiScheme,
		serializer.WithStreamingCollectionEncodingToJSON(),
		serializer.WithStreamingCollectionEncodingToProtobuf())
	// storageCodec is how objects are kept in the store: protobuf, with the
	// type envelope, so a value decodes alone.
	storageSerializer = protobuf.NewSerializer(apiScheme, apiScheme)
)

// metaV1 is the legacy group version that Status, options and discovery
// documents are served in.
var metaV1 = schema.GroupVersion{Version: "v1"}

// outputFormat is the negotiated response encoding.
type outputFormat struct {
	info runtime.SerializerInfo
	// table is set when the client asked for a meta.k8s.io Table.
	table bool
	// includeObject, for tables: None, Metadata (default) or Object.
	includeObject metav1.IncludeObjectPolicy
	// metadata is set when the client asked for PartialObjectMetadata
	// (the metadata-only view controllers' informers use).
	metadata bool
}

func serializerFor(mediaType string) (runtime.SerializerInfo, bool) {
	for _, info := range codecs.SupportedMediaTypes() {
		if info.MediaType == mediaType {
			return info, true
		}
	}
	return runtime.SerializerInfo{}, false
}

// negotiateOutput picks the response encoding from the Accept header.
// An absent or wildcard Accept gets JSON.
func negotiateOutput(r *http.Request) (outputFormat, error) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		info, _ := serializerFor(mediaJSON)
		return outputFormat{info: info}, nil
	}
	for _, clause := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*":
			mt = mediaJSON
		}
		info, ok := serializerFor(mt)
		if !ok {
			continue
		}
		if as := params["as"]; as != "" {
			// Tables (JSON) and PartialObjectMetadata(List) of meta.k8s.io
			// v1 are offered as transformations; anything else is skipped.
			if params["g"] != "meta.k8s.io" || (params["v"] != "v1" && params["v"] != "v1beta1") {
				continue
			}
			switch {
			case as == "Table" && mt == mediaJSON:
				return outputFormat{info: info, table: true, includeObject: metav1.IncludeMetadata}, nil
			case (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") && params["v"] == "v1":
				return outputFormat{info: info, metadata: true}, nil
			}
			continue
		}
		return outputFormat{info: info}, nil
	}
	return outputFormat{}, errNotAcceptable(accept)
}

// strictSerializerFor returns the decoder that reports unknown and
// duplicate fields, for the media types that have one (JSON, YAML).
func strictSerializerFor(mediaType string) (runtime.Serializer, bool) {
	for _, info := range codecs.SupportedMediaTypes() {
		if info.MediaType == mediaType && info.StrictSerializer != nil {
			return info.StrictSerializer, true
		}
	}
	return nil, false
}

// negotiateInput returns the decoder for the request body.
func negotiateInput(r *http.Request) (runtime.SerializerInfo, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = mediaJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return runtime.SerializerInfo{}, errUnsupportedMediaType(ct)
	}
	info, ok := serializerFor(mt)
	if !ok {
		return runtime.SerializerInfo{}, errUnsupportedMediaType(ct)
	}
	return info, nil
}

// kindOf returns the served kind of a typed object.
func kindOf(obj runtime.Object) (schema.GroupVersionKind, error) {
	gvks, _, err := apiScheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	return gvks[0], nil
}

// encodeStorage serialises an object for the store (without resourceVersion).
func encodeStorage(obj runtime.Object, gv schema.GroupVersion) ([]byte, error) {
	return runtime.Encode(codecs.EncoderForVersion(storageSerializer, gv), obj)
}

// isUnstructured reports whether obj is a custom resource or a list of them.
func isUnstructured(obj runtime.Object) bool {
	_, ok := obj.(runtime.Unstructured)
	return ok
}

// encoderFor returns the encoder of obj in gv: custom resources are
// encoded as they are (their apiVersion is the served one already).
func encoderFor(s runtime.Serializer, obj runtime.Object, gv schema.GroupVersion) runtime.Encoder {
	if isUnstructured(obj) {
		return s
	}
	return codecs.EncoderForVersion(s, gv)
}

// negotiateOutputJSONOrYAML negotiates among JSON and YAML only, as the
// apiextensions server does for custom resources, which have no protobuf.
func negotiateOutputJSONOrYAML(r *http.Request) (outputFormat, error) {
	for _, clause := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(clause))
		if err != nil {
			continue
		}
		switch mt {
		case mediaJSON, mediaYAML:
			info, _ := serializerFor(mt)
			return outputFormat{info: info}, nil
		case "*/*", "application/*":
			info, _ := serializerFor(mediaJSON)
			return outputFormat{info: info}, nil
		}
	}
	return outputFormat{}, errNotAcceptable(r.Header.Get("Accept"))
}

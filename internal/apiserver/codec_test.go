package apiserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNegotiateOutput(t *testing.T) {
	tests := []struct {
		accept    string
		wantMedia string
		wantTable bool
		wantCode  int32
		wantMeta  bool
	}{
		{"", mediaJSON, false, 0, false},
		{"*/*", mediaJSON, false, 0, false},
		{"application/json", mediaJSON, false, 0, false},
		{"application/yaml", mediaYAML, false, 0, false},
		{"application/vnd.kubernetes.protobuf, application/json", mediaProtobuf, false, 0, false},
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", mediaJSON, true, 0, false},
		{"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", mediaProtobuf, false, 0, true},
		{"application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io", mediaJSON, false, 0, true},
		// Other transformations, v1beta1 metadata and Tables in YAML fall through.
		{"application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io,application/yaml", mediaYAML, false, 0, false},
		{"application/json;as=PartialObjectMetadataList;v=v1beta1;g=meta.k8s.io,application/yaml", mediaYAML, false, 0, false},
		{"application/yaml;as=Table;v=v1;g=meta.k8s.io,application/json", mediaJSON, false, 0, false},
		{"text/html", "", false, http.StatusNotAcceptable, false},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/pods", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			out, err := negotiateOutput(r)
			if tt.wantCode != 0 {
				if code := toStatus(err).Code; code != tt.wantCode {
					t.Fatalf("code %d, want %d (err %v)", code, tt.wantCode, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.info.MediaType != tt.wantMedia || out.table != tt.wantTable || out.metadata != tt.wantMeta {
				t.Errorf("got %s table=%v metadata=%v, want %s table=%v metadata=%v", out.info.MediaType, out.table, out.metadata, tt.wantMedia, tt.wantTable, tt.wantMeta)
			}
		})
	}
}

func TestNegotiateInput(t *testing.T) {
	tests := []struct {
		contentType string
		wantMedia   string
		wantErr     bool
	}{
		{"", mediaJSON, false},
		{"application/json; charset=utf-8", mediaJSON, false},
		{"application/yaml", mediaYAML, false},
		{"application/vnd.kubernetes.protobuf", mediaProtobuf, false},
		{"text/plain", "", true},
		{"not a media type;;", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/namespaces/x/pods", nil)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			info, err := negotiateInput(r)
			if tt.wantErr {
				if !apierrors.IsUnsupportedMediaType(err) {
					t.Fatalf("want 415, got %v", err)
				}
				return
			}
			if err != nil || info.MediaType != tt.wantMedia {
				t.Fatalf("got %q, %v; want %q", info.MediaType, err, tt.wantMedia)
			}
		})
	}
}

func TestToStatusHidesInternalErrors(t *testing.T) {
	st := toStatus(errInternalForTest{})
	if st.Code != http.StatusInternalServerError || st.Reason != metav1.StatusReasonInternalError {
		t.Fatalf("got %+v", st)
	}
	st = toStatus(apierrors.NewBadRequest("nope"))
	if st.Code != http.StatusBadRequest || st.Status != metav1.StatusFailure {
		t.Fatalf("got %+v", st)
	}
}

type errInternalForTest struct{}

func (errInternalForTest) Error() string { return "boom" }

package apiextensions

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Kind: "Widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*apiextensionsv1.CustomResourceDefinition)
		want   []string // "field: type" of each error, in order
	}{
		{"valid", func(*apiextensionsv1.CustomResourceDefinition) {}, nil},
		{"name not plural.group", func(c *apiextensionsv1.CustomResourceDefinition) { c.Name = "gadgets.example.com" },
			[]string{"metadata.name: Invalid value"}},
		{"no storage version", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Versions[0].Storage = false },
			[]string{"spec.versions: Invalid value", "status.storedVersions: Invalid value"}},
		{"bad scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Galaxy" },
			[]string{"spec.scope: Unsupported value"}},
		{"non-structural schema", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = apiextensionsv1.JSONSchemaProps{}
		}, // As kube-apiserver: identical per-version schemas are validated as the internal type's spec.validation.
			[]string{"spec.validation.openAPIV3Schema.properties[spec].type: Required value"}},
		{"bad CEL rule", func(c *apiextensionsv1.CustomResourceDefinition) {
			p := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
			p.XValidations = apiextensionsv1.ValidationRules{{Rule: "self.size >"}}
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"] = p
		}, []string{"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value"}},
		// Conversion strategy Webhook, as upstream validates it.
		{"webhook conversion", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("https://convert.example.com/crd", nil, nil, "v1")
		}, nil},
		{"webhook conversion without conversionReviewVersions", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("https://convert.example.com/crd", nil, nil)
		}, []string{"spec.conversion.conversionReviewVersions: Required value"}},
		{"webhook conversion with an unknown review version", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("https://convert.example.com/crd", nil, nil, "v9")
		}, []string{"spec.conversion.conversionReviewVersions: Invalid value"}},
		{"webhook conversion with url and service", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("https://convert.example.com/crd",
				&apiextensionsv1.ServiceReference{Namespace: "ns", Name: "svc"}, nil, "v1")
		}, []string{"spec.conversion.webhookClientConfig: Required value"}},
		{"webhook conversion over http", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("http://convert.example.com/crd", nil, nil, "v1")
		}, []string{"spec.conversion.webhookClientConfig.url: Invalid value"}},
		{"webhook conversion with preserveUnknownFields", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Conversion = webhookConversion("https://convert.example.com/crd", nil, nil, "v1")
			c.Spec.PreserveUnknownFields = true
		}, []string{"spec.conversion.strategy: Invalid value", "spec.preserveUnknownFields: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := validCRD()
			tt.mutate(crd)
			s := CustomResourceDefinitionStrategy{}
			s.Default(crd)
			s.PrepareForCreate(context.Background(), crd)
			var got []string
			for _, e := range s.Validate(context.Background(), crd) {
				got = append(got, e.Field+": "+e.Type.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestStoredVersions(t *testing.T) {
	s := CustomResourceDefinitionStrategy{}
	crd := validCRD()
	s.Default(crd)
	crd.Status.StoredVersions = []string{"bogus"}
	s.PrepareForCreate(context.Background(), crd)
	if got := crd.Status.StoredVersions; len(got) != 1 || got[0] != "v1" {
		t.Fatalf("storedVersions after create = %v, want [v1]", got)
	}
	next := crd.DeepCopy()
	next.Spec.Versions[0].Storage = false
	next.Spec.Versions = append(next.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
		Name: "v2", Served: true, Storage: true, Schema: crd.Spec.Versions[0].Schema})
	s.PrepareForUpdate(context.Background(), next, crd)
	if got := next.Status.StoredVersions; len(got) != 2 || got[1] != "v2" {
		t.Fatalf("storedVersions after update = %v, want [v1 v2]", got)
	}
	if next.Generation != crd.Generation+1 {
		t.Fatalf("generation %d, want %d", next.Generation, crd.Generation+1)
	}
	if errs := s.ValidateUpdate(context.Background(), next, crd); len(errs) > 0 {
		t.Fatalf("update: %v", errs)
	}
}

// testCA returns a self-signed PEM certificate, as a caBundle holds.
func testCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// As upstream: a caBundle that is not PEM is refused on the update of an
// Established definition whose caBundle was valid (allowed on create).
func TestValidateCABundle(t *testing.T) {
	s := CustomResourceDefinitionStrategy{}
	crd := validCRD()
	crd.Spec.Conversion = webhookConversion("https://convert.example.com/crd", nil, []byte("not PEM"), "v1")
	s.Default(crd)
	s.PrepareForCreate(context.Background(), crd)
	if errs := s.Validate(context.Background(), crd); len(errs) > 0 {
		t.Fatalf("create with an invalid caBundle: %v", errs)
	}
	crd.Spec.Conversion.Webhook.ClientConfig.CABundle = testCA(t)
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
	next := crd.DeepCopy()
	next.Spec.Conversion.Webhook.ClientConfig.CABundle = []byte("not PEM")
	s.PrepareForUpdate(context.Background(), next, crd)
	errs := s.ValidateUpdate(context.Background(), next, crd)
	if len(errs) != 1 || errs[0].Field != "spec.conversion.webhookClientConfig.caBundle" {
		t.Fatalf("update to an invalid caBundle: %v", errs)
	}
}

func webhookConversion(url string, svc *apiextensionsv1.ServiceReference, caBundle []byte, reviewVersions ...string) *apiextensionsv1.CustomResourceConversion {
	cc := &apiextensionsv1.WebhookClientConfig{Service: svc, CABundle: caBundle}
	if url != "" {
		cc.URL = &url
	}
	return &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook:  &apiextensionsv1.WebhookConversion{ClientConfig: cc, ConversionReviewVersions: reviewVersions},
	}
}

package apiserver

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/havre/havre/internal/registry/catalog"
)

func TestContinueToken(t *testing.T) {
	const prefix = "/registry/core/configmaps/ns/"
	tok := encodeContinue(42, prefix+"b\x00")
	got, err := decodeContinue(tok, prefix)
	if err != nil || got.Revision != 42 || got.Start != prefix+"b\x00" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bad := []string{"", "%%%", encodeContinue(0, prefix+"a"), encodeContinue(3, "/registry/core/secrets/ns/a")}
	for _, s := range bad {
		if _, err := decodeContinue(s, prefix); !apierrors.IsBadRequest(err) {
			t.Errorf("decodeContinue(%q): want BadRequest, got %v", s, err)
		}
	}
}

func TestParseResourceVersion(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "17": 17} {
		if got, err := parseResourceVersion(in); err != nil || got != want {
			t.Errorf("%q: got %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"-1", "abc", "1.5"} {
		if _, err := parseResourceVersion(in); !apierrors.IsBadRequest(err) {
			t.Errorf("%q: want BadRequest, got %v", in, err)
		}
	}
}

func TestPredicateFieldLabels(t *testing.T) {
	s, err := New(Config{Resources: catalog.Resources()})
	if err != nil {
		t.Fatal(err)
	}
	pods := s.handler("", "v1", "pods")
	configmaps := s.handler("", "v1", "configmaps")
	tests := []struct {
		h        *resourceHandler
		label    string
		field    string
		wantFail bool
	}{
		{pods, "", "spec.nodeName=n1", false},
		{pods, "", "status.phase!=Running,metadata.name=p", false},
		{pods, "app in (a,b)", "", false},
		{configmaps, "", "metadata.namespace=x", false},
		{configmaps, "", "spec.nodeName=n1", true},
		{pods, "", "nonsense", true},
		{pods, "app in (a", "", true},
	}
	for _, tt := range tests {
		_, err := tt.h.predicate(metav1.ListOptions{LabelSelector: tt.label, FieldSelector: tt.field})
		if tt.wantFail != apierrors.IsBadRequest(err) {
			t.Errorf("%s label=%q field=%q: err %v", tt.h.res.Resource, tt.label, tt.field, err)
		}
	}
}

package apiserver

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWithPropagationFinalizer(t *testing.T) {
	fg, bg, orphan := metav1.DeletePropagationForeground, metav1.DeletePropagationBackground, metav1.DeletePropagationOrphan
	yes := true
	tests := []struct {
		name string
		have []string
		opts metav1.DeleteOptions
		want []string
	}{
		{"default is background", []string{"x"}, metav1.DeleteOptions{}, []string{"x"}},
		{"background", nil, metav1.DeleteOptions{PropagationPolicy: &bg}, nil},
		{"foreground", nil, metav1.DeleteOptions{PropagationPolicy: &fg}, []string{metav1.FinalizerDeleteDependents}},
		{"orphan", []string{"x"}, metav1.DeleteOptions{PropagationPolicy: &orphan}, []string{"x", metav1.FinalizerOrphanDependents}},
		//lint:ignore SA1019 old clients still send orphanDependents.
		{"orphanDependents", nil, metav1.DeleteOptions{OrphanDependents: &yes}, []string{metav1.FinalizerOrphanDependents}},
		{"not twice", []string{metav1.FinalizerDeleteDependents}, metav1.DeleteOptions{PropagationPolicy: &fg}, []string{metav1.FinalizerDeleteDependents}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := slices.Clone(tt.have)
			got := withPropagationFinalizer(have, &tt.opts)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !slices.Equal(have, tt.have) {
				t.Errorf("input modified: %v", have)
			}
		})
	}
}

func TestDeleteOptions(t *testing.T) {
	tests := []struct {
		name, query, body string
		wantGrace         *int64
		wantInvalid       bool
	}{
		{name: "empty"},
		{name: "query grace", query: "gracePeriodSeconds=5", wantGrace: ptr(int64(5))},
		{name: "body grace", body: `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}`, wantGrace: ptr(int64(0))},
		{name: "body in a custom group's version", body: `{"kind":"DeleteOptions","apiVersion":"gateway.networking.k8s.io/v1","gracePeriodSeconds":7}`, wantGrace: ptr(int64(7))},
		{name: "negative grace is zero", query: "gracePeriodSeconds=-3", wantGrace: ptr(int64(0))},
		{name: "bad policy", query: "propagationPolicy=Sideways", wantInvalid: true},
		{name: "both orphan and policy", body: `{"orphanDependents":true,"propagationPolicy":"Foreground"}`, wantInvalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("DELETE", "/api/v1/namespaces/x/configmaps/c?"+tt.query, strings.NewReader(tt.body))
			opts, err := deleteOptions(r)
			if tt.wantInvalid {
				if !apierrors.IsInvalid(err) {
					t.Fatalf("want Invalid, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (opts.GracePeriodSeconds == nil) != (tt.wantGrace == nil) ||
				(tt.wantGrace != nil && *opts.GracePeriodSeconds != *tt.wantGrace) {
				t.Errorf("grace %v, want %v", opts.GracePeriodSeconds, tt.wantGrace)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

package apiregistration

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

func TestAPIServiceStrategy(t *testing.T) {
	s := APIServiceStrategy{}
	ctx := context.Background()
	remote := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"},
		Spec: apiregistrationv1.APIServiceSpec{Group: "wardle.example.com", Version: "v1alpha1",
			Service:              &apiregistrationv1.ServiceReference{Namespace: "ns", Name: "api"},
			GroupPriorityMinimum: 2000, VersionPriority: 200, InsecureSkipTLSVerify: true},
		Status: apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{{Type: "Available", Status: "True"}}},
	}
	s.Default(remote)
	if p := remote.Spec.Service.Port; p == nil || *p != 443 {
		t.Errorf("port defaulted to %v, want 443", p)
	}
	s.PrepareForCreate(ctx, remote)
	if len(remote.Status.Conditions) != 0 {
		t.Errorf("status kept on create: %+v", remote.Status)
	}
	if errs := s.Validate(ctx, remote); len(errs) != 0 {
		t.Errorf("valid APIService: %v", errs)
	}

	local := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1."},
		Spec:       apiregistrationv1.APIServiceSpec{Version: "v1", GroupPriorityMinimum: 18000, VersionPriority: 1},
	}
	s.PrepareForCreate(ctx, local)
	if c := local.Status.Conditions; len(c) != 1 || c[0].Reason != "Local" || c[0].Status != "True" {
		t.Errorf("local APIService's status: %+v", c)
	}
	if errs := s.Validate(ctx, local); len(errs) != 0 {
		t.Errorf("v1.: %v", errs)
	}

	for name, mutate := range map[string]func(a *apiregistrationv1.APIService){
		"metadata.name":              func(a *apiregistrationv1.APIService) { a.Name = "v1.other" },
		"spec.groupPriorityMinimum":  func(a *apiregistrationv1.APIService) { a.Spec.GroupPriorityMinimum = 0 },
		"spec.versionPriority":       func(a *apiregistrationv1.APIService) { a.Spec.VersionPriority = 1001 },
		"spec.insecureSkipTLSVerify": func(a *apiregistrationv1.APIService) { a.Spec.CABundle = []byte("x") },
		"spec.service.namespace":     func(a *apiregistrationv1.APIService) { a.Spec.Service.Namespace = "" },
	} {
		a := remote.DeepCopy()
		mutate(a)
		errs := s.Validate(ctx, a)
		if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), name) {
			t.Errorf("%s: errors %v", name, errs)
		}
	}
}

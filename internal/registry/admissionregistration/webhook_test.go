package admissionregistration

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidatingWebhookDefaults(t *testing.T) {
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{{
		Name:         "a.b.c",
		ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "n", Name: "s"}},
		Rules:        []admissionregistrationv1.RuleWithOperations{{}},
	}}}
	ValidatingWebhookConfigurationStrategy{}.Default(c)
	w := c.Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Fail || *w.MatchPolicy != admissionregistrationv1.Equivalent ||
		w.NamespaceSelector == nil || w.ObjectSelector == nil || *w.TimeoutSeconds != 10 ||
		*w.ClientConfig.Service.Port != 443 || *w.Rules[0].Scope != admissionregistrationv1.AllScopes {
		t.Errorf("defaults: %+v", w)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "a.b.c"}}}
	MutatingWebhookConfigurationStrategy{}.Default(m)
	if *m.Webhooks[0].ReinvocationPolicy != admissionregistrationv1.NeverReinvocationPolicy {
		t.Errorf("reinvocationPolicy %v", *m.Webhooks[0].ReinvocationPolicy)
	}
}

func TestValidateWebhook(t *testing.T) {
	none := admissionregistrationv1.SideEffectClassNone
	some := admissionregistrationv1.SideEffectClassSome
	valid := func() admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name:         "webhook.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: new("https://example.com/validate")},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	tests := []struct {
		name   string
		mutate func(w *admissionregistrationv1.ValidatingWebhook)
		want   []string // field paths in the errors; none: valid
	}{
		{name: "valid", mutate: func(*admissionregistrationv1.ValidatingWebhook) {}},
		{name: "name not qualified", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.Name = "webhook" }, want: []string{"webhooks[0].name"}},
		{name: "sideEffects required", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.SideEffects = nil }, want: []string{"webhooks[0].sideEffects"}},
		{name: "sideEffects Some", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.SideEffects = &some }, want: []string{"webhooks[0].sideEffects"}},
		{name: "review versions", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.AdmissionReviewVersions = []string{"v2"} },
			want: []string{"webhooks[0].admissionReviewVersions"}},
		{name: "url and service", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.ClientConfig.Service = &admissionregistrationv1.ServiceReference{Namespace: "n", Name: "s"}
		}, want: []string{"webhooks[0].clientConfig"}},
		{name: "http url", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.ClientConfig.URL = new("http://example.com") },
			want: []string{"webhooks[0].clientConfig.url"}},
		{name: "service without name, bad path", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.ClientConfig.URL = nil
			w.ClientConfig.Service = &admissionregistrationv1.ServiceReference{Namespace: "n", Path: new("validate")}
		}, want: []string{"webhooks[0].clientConfig.service.name", "webhooks[0].clientConfig.service.path"}},
		{name: "timeout", mutate: func(w *admissionregistrationv1.ValidatingWebhook) { w.TimeoutSeconds = new(int32(31)) },
			want: []string{"webhooks[0].timeoutSeconds"}},
		{name: "rule without operations, wildcard with others", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.Rules[0].Operations = nil
			w.Rules[0].Resources = []string{"*", "pods"}
		}, want: []string{"webhooks[0].rules[0].operations", "webhooks[0].rules[0].resources"}},
		{name: "failurePolicy", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.FailurePolicy = new(admissionregistrationv1.FailurePolicyType("Sometimes"))
		}, want: []string{"webhooks[0].failurePolicy"}},
		{name: "bad selector", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b c"}}
		}, want: []string{"webhooks[0].namespaceSelector.matchLabels"}},
		{name: "match condition does not compile", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "object.metadata.name =="}}
		}, want: []string{"webhooks[0].matchConditions[0].expression"}},
		{name: "match condition not boolean", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "'a string'"}}
		}, want: []string{"webhooks[0].matchConditions[0].expression"}},
		{name: "match condition names", mutate: func(w *admissionregistrationv1.ValidatingWebhook) {
			w.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "c", Expression: "true"}, {Name: "c", Expression: "request.name != 'x'"}}
		}, want: []string{"webhooks[0].matchConditions[1].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := valid()
			tt.mutate(&w)
			c := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{w}}
			errs := ValidatingWebhookConfigurationStrategy{}.Validate(context.Background(), c)
			if len(tt.want) == 0 && len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			got := errs.ToAggregate()
			for _, path := range tt.want {
				if got == nil || !strings.Contains(got.Error(), path+":") {
					t.Errorf("errors %v do not name %s", got, path)
				}
			}
		})
	}
	dup := valid()
	c := &admissionregistrationv1.ValidatingWebhookConfiguration{Webhooks: []admissionregistrationv1.ValidatingWebhook{valid(), dup}}
	if errs := (ValidatingWebhookConfigurationStrategy{}).Validate(context.Background(), c); len(errs) != 1 || errs[0].Field != "webhooks[1].name" {
		t.Errorf("duplicate names: %v", errs)
	}
}

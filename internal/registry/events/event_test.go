package events

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validEvent() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.17a", Namespace: "default"},
		EventTime:  metav1.NowMicro(), ReportingController: "havre.io/scheduler", ReportingInstance: "havre-1",
		Action: "Binding", Reason: "Scheduled", Type: "Normal", Note: "assigned default/web to node-1",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", APIVersion: "v1"},
	}
}

func TestEvent(t *testing.T) {
	s, ctx := EventStrategy{}, context.Background()
	if errs := s.Validate(ctx, validEvent()); len(errs) > 0 {
		t.Errorf("valid event: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*eventsv1.Event)
		field  string
		typ    field.ErrorType
	}{
		{"no eventTime", func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }, "eventTime", field.ErrorTypeRequired},
		{"bad type", func(e *eventsv1.Event) { e.Type = "Info" }, "type", field.ErrorTypeInvalid},
		{"no action", func(e *eventsv1.Event) { e.Action = "" }, "action", field.ErrorTypeRequired},
		{"no reportingController", func(e *eventsv1.Event) { e.ReportingController = "" }, "reportingController", field.ErrorTypeRequired},
		{"deprecated count", func(e *eventsv1.Event) { e.DeprecatedCount = 3 }, "deprecatedCount", field.ErrorTypeInvalid},
		{"short series", func(e *eventsv1.Event) {
			e.Series = &eventsv1.EventSeries{Count: 1, LastObservedTime: metav1.NowMicro()}
		},
			"series.count", field.ErrorTypeInvalid},
		{"namespace mismatch", func(e *eventsv1.Event) { e.Regarding.Namespace = "other" }, "regarding.namespace", field.ErrorTypeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvent()
			tc.mutate(e)
			errs := s.Validate(ctx, e)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("got %v, want %s %s", errs, tc.typ, tc.field)
			}
		})
	}

	old := validEvent()
	upd := old.DeepCopy()
	upd.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NowMicro()}
	if errs := s.ValidateUpdate(ctx, upd, old); len(errs) > 0 {
		t.Errorf("series update: %v", errs)
	}
	upd.Reason = "Moved"
	if errs := s.ValidateUpdate(ctx, upd, old); len(errs) != 1 || errs[0].Field != "reason" {
		t.Errorf("reason change: %v", errs)
	}

	got := s.SelectableFields(old)
	if len(got) != 11 || len(s.SelectableFields(&eventsv1.Event{})) != 11 || got["regarding.name"] != "web" || got["source"] != "havre.io/scheduler" {
		t.Errorf("fields = %v", got)
	}
}

// Package events holds the strategy for events.k8s.io/v1 Events, the
// structured form of core events, with its own field names.
package events

import (
	"context"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// EventStrategy governs events.k8s.io/v1 events.
type EventStrategy struct{ registry.DefaultStrategy }

// Validate applies upstream's events.k8s.io rules: eventTime and the
// reporting fields are required, type is Normal or Warning, the deprecated
// core fields stay unset and a series counts at least 2.
func (EventStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	ev := obj.(*eventsv1.Event)
	var errs field.ErrorList
	if ev.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if ev.Type != "Normal" && ev.Type != "Warning" {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", "has invalid value: "+ev.Type))
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"deprecatedFirstTimestamp", !ev.DeprecatedFirstTimestamp.IsZero()}, {"deprecatedLastTimestamp", !ev.DeprecatedLastTimestamp.IsZero()},
		{"deprecatedCount", ev.DeprecatedCount != 0}, {"deprecatedSource", ev.DeprecatedSource.Component != "" || ev.DeprecatedSource.Host != ""}} {
		if f.set {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", "needs to be unset"))
		}
	}
	if s := ev.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series", "count"), "", "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	if ev.Namespace != "" && ev.Regarding.Namespace != "" && ev.Regarding.Namespace != ev.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("regarding", "namespace"), ev.Regarding.Namespace, "does not match event.namespace"))
	}
	return append(errs, core.ValidateEventReporting(ev.ReportingController, ev.ReportingInstance, ev.Action, ev.Reason, ev.Note,
		"reportingController", "note")...)
}

// ValidateUpdate validates the event and allows only its series (and
// metadata) to change.
func (s EventStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	ev, oldEv := obj.(*eventsv1.Event), old.(*eventsv1.Event)
	errs := s.Validate(ctx, obj)
	for _, f := range []struct {
		name     string
		new, old any
	}{{"regarding", ev.Regarding, oldEv.Regarding}, {"related", ev.Related, oldEv.Related}, {"reason", ev.Reason, oldEv.Reason},
		{"note", ev.Note, oldEv.Note}, {"type", ev.Type, oldEv.Type}, {"action", ev.Action, oldEv.Action},
		{"reportingController", ev.ReportingController, oldEv.ReportingController}, {"reportingInstance", ev.ReportingInstance, oldEv.ReportingInstance},
		{"deprecatedSource", ev.DeprecatedSource, oldEv.DeprecatedSource}, {"deprecatedCount", ev.DeprecatedCount, oldEv.DeprecatedCount}} {
		errs = append(errs, core.ValidateImmutable(f.new, f.old, field.NewPath(f.name))...)
	}
	// Sub-microsecond differences come from clients' serialization.
	if !ev.EventTime.Truncate(time.Microsecond).Equal(oldEv.EventTime.Truncate(time.Microsecond)) {
		errs = append(errs, core.ValidateImmutable(ev.EventTime, oldEv.EventTime, field.NewPath("eventTime"))...)
	}
	return errs
}

// SelectableFields returns upstream's events.k8s.io field-selector fields.
func (EventStrategy) SelectableFields(obj runtime.Object) fields.Set {
	ev := obj.(*eventsv1.Event)
	source := ev.DeprecatedSource.Component
	if source == "" {
		source = ev.ReportingController
	}
	return fields.Set{
		"regarding.kind":            ev.Regarding.Kind,
		"regarding.namespace":       ev.Regarding.Namespace,
		"regarding.name":            ev.Regarding.Name,
		"regarding.uid":             string(ev.Regarding.UID),
		"regarding.apiVersion":      ev.Regarding.APIVersion,
		"regarding.resourceVersion": ev.Regarding.ResourceVersion,
		"regarding.fieldPath":       ev.Regarding.FieldPath,
		"reason":                    ev.Reason,
		"reportingController":       ev.ReportingController,
		"source":                    source,
		"type":                      ev.Type,
	}
}

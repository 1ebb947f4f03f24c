package core

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
)

// Length limits on event fields, shared with events.k8s.io.
const (
	ReportingInstanceLengthLimit = 128
	ActionLengthLimit            = 128
	ReasonLengthLimit            = 128
	NoteLengthLimit              = 1024
)

// EventStrategy governs core/v1 events.
type EventStrategy struct{ registry.DefaultStrategy }

// Validate applies upstream's core/v1 event rules: the involved object's
// namespace must match, and events with an eventTime (new-style) need the
// reporting fields, action and reason.
func (EventStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	ev := obj.(*corev1.Event)
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ev.InvolvedObject.Namespace == "" {
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	return append(errs, ValidateEventReporting(ev.ReportingController, ev.ReportingInstance, ev.Action, ev.Reason, ev.Message,
		"reportingComponent", "message")...)
}

// ValidateEventReporting checks the fields a new-style event must carry;
// the controller and message fields are named per API version.
func ValidateEventReporting(controller, instance, action, reason, note, controllerField, noteField string) field.ErrorList {
	var errs field.ErrorList
	required := func(v, name string, limit int) {
		p := field.NewPath(name)
		switch {
		case v == "":
			errs = append(errs, field.Required(p, ""))
		case limit > 0 && len(v) > limit:
			errs = append(errs, field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", limit)))
		}
	}
	required(controller, controllerField, 0)
	if controller != "" {
		errs = append(errs, ValidateQualifiedName(controller, field.NewPath(controllerField))...)
	}
	required(instance, "reportingInstance", ReportingInstanceLengthLimit)
	required(action, "action", ActionLengthLimit)
	required(reason, "reason", ReasonLengthLimit)
	if len(note) > NoteLengthLimit {
		errs = append(errs, field.Invalid(field.NewPath(noteField), "", fmt.Sprintf("can have at most %v characters", NoteLengthLimit)))
	}
	return errs
}

// ValidateUpdate validates like Validate.
func (s EventStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// SelectableFields returns upstream's event field-selector fields.
func (EventStrategy) SelectableFields(obj runtime.Object) fields.Set {
	ev := obj.(*corev1.Event)
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	return fields.Set{
		"involvedObject.kind":            ev.InvolvedObject.Kind,
		"involvedObject.namespace":       ev.InvolvedObject.Namespace,
		"involvedObject.name":            ev.InvolvedObject.Name,
		"involvedObject.uid":             string(ev.InvolvedObject.UID),
		"involvedObject.apiVersion":      ev.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": ev.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       ev.InvolvedObject.FieldPath,
		"reason":                         ev.Reason,
		"reportingComponent":             ev.ReportingController,
		"source":                         source,
		"type":                           ev.Type,
	}
}

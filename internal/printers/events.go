package printers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Both Event APIs print the same columns: upstream serves them from one
// storage and prints events.k8s.io Events in their core form.
var eventColumns = []metav1.TableColumnDefinition{
	column("Last Seen", "string", corev1.Event{}.SwaggerDoc()["lastTimestamp"]),
	column("Type", "string", corev1.Event{}.SwaggerDoc()["type"]),
	column("Reason", "string", corev1.Event{}.SwaggerDoc()["reason"]),
	column("Object", "string", corev1.Event{}.SwaggerDoc()["involvedObject"]),
	wideColumn("Subobject", "string", corev1.Event{}.InvolvedObject.SwaggerDoc()["fieldPath"]),
	wideColumn("Source", "string", corev1.Event{}.SwaggerDoc()["source"]),
	column("Message", "string", corev1.Event{}.SwaggerDoc()["message"]),
	wideColumn("First Seen", "string", corev1.Event{}.SwaggerDoc()["firstTimestamp"]),
	wideColumn("Count", "string", corev1.Event{}.SwaggerDoc()["count"]),
	{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
}

func init() {
	register(corev1.SchemeGroupVersion.WithKind("Event"), eventColumns, printEvent)
	register(eventsv1.SchemeGroupVersion.WithKind("Event"), eventColumns, func(e *eventsv1.Event) (metav1.TableRow, error) {
		return printEvent(coreEvent(e))
	})
}

func printEvent(e *corev1.Event) (metav1.TableRow, error) {
	firstSeen := age(e.FirstTimestamp)
	if e.FirstTimestamp.IsZero() {
		firstSeen = microAge(e.EventTime)
	}
	lastSeen := age(e.LastTimestamp)
	if e.LastTimestamp.IsZero() {
		lastSeen = firstSeen
	}
	count := e.Count
	if e.Series != nil {
		lastSeen = microAge(e.Series.LastObservedTime)
		count = e.Series.Count
	} else if count == 0 {
		// Singleton events of the new API have no count.
		count = 1
	}
	target := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		target = fmt.Sprintf("%s/%s", target, e.InvolvedObject.Name)
	}
	return cells(lastSeen, e.Type, e.Reason, target, e.InvolvedObject.FieldPath,
		eventSource(e), strings.TrimSpace(e.Message), firstSeen, int64(count), e.Name)
}

// eventSource prints "component, host", falling back on the reporting
// controller and instance.
func eventSource(e *corev1.Event) string {
	component := firstNonEmpty(e.Source.Component, e.ReportingController)
	instance := firstNonEmpty(e.Source.Host, e.ReportingInstance)
	if instance == "" {
		return component
	}
	return component + ", " + instance
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// coreEvent is the core/v1 form of an events.k8s.io/v1 Event, in the fields
// the printer reads.
func coreEvent(in *eventsv1.Event) *corev1.Event {
	out := &corev1.Event{
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	return out
}

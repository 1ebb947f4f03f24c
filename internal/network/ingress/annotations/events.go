package annotations

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/record"
)

// ReasonUnsupportedAnnotation is the reason of the Warning Event listing
// the annotations of an Ingress Havre does not apply.
const ReasonUnsupportedAnnotation = "UnsupportedAnnotation"

// maxEventMessage is the longest Event message the API accepts.
const maxEventMessage = 1024

// RecordWarnings records one Warning Event on ing listing warnings (what
// Parse returned); nothing when there are none. Event correlation
// aggregates repeats, so it may be called on every translation.
func RecordWarnings(rec record.EventRecorder, ing *networkingv1.Ingress, warnings []string) {
	if rec == nil || len(warnings) == 0 {
		return
	}
	msg := strings.Join(warnings, "; ")
	if len(msg) > maxEventMessage {
		msg = strings.ToValidUTF8(msg[:maxEventMessage-3], "") + "..."
	}
	rec.Event(ing, corev1.EventTypeWarning, ReasonUnsupportedAnnotation, msg)
}

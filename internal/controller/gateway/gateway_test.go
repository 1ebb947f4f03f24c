package gateway

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	gwnet "github.com/havre/havre/internal/network/gateway"
)

func TestRouteStatusKeepsOtherControllers(t *testing.T) {
	then := metav1.NewTime(metav1.Now().Add(-3600e9))
	ref := gatewayv1.ParentReference{Name: "edge"}
	old := gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{
		{ParentRef: gatewayv1.ParentReference{Name: "theirs"}, ControllerName: "example.com/other",
			Conditions: []metav1.Condition{{Type: "Accepted", Status: "True", Reason: "Accepted", LastTransitionTime: then}}},
		{ParentRef: ref, ControllerName: "havre.io/gateway-controller",
			Conditions: []metav1.Condition{{Type: "Accepted", Status: "True", Reason: "Accepted", LastTransitionTime: then, ObservedGeneration: 1}}},
		{ParentRef: gatewayv1.ParentReference{Name: "removed"}, ControllerName: "havre.io/gateway-controller"},
	}}
	got := routeStatus(old, []*gwnet.ParentStatus{{Ref: ref, Conditions: []gwnet.Condition{
		{Type: "Accepted", Status: "True", Reason: "Accepted"},
		{Type: "ResolvedRefs", Status: "False", Reason: "BackendNotFound", Message: "Service ns/web not found"},
	}}}, 2)
	if len(got.Parents) != 2 || got.Parents[0].ControllerName != "example.com/other" || got.Parents[1].ParentRef.Name != "edge" {
		t.Fatalf("parents %+v, want theirs kept, ours replaced, the removed parent gone", got.Parents)
	}
	c := got.Parents[1].Conditions
	if len(c) != 2 || !c[0].LastTransitionTime.Equal(&then) || c[0].ObservedGeneration != 2 || c[1].Reason != "BackendNotFound" {
		t.Errorf("conditions %+v: an unchanged condition keeps its transition time, all get the generation", c)
	}
	if got := routeStatus(gatewayv1.RouteStatus{}, nil, 1); got.Parents != nil {
		t.Errorf("a route of no parent of ours gets parents %v", got.Parents)
	}
}

func TestAddressOf(t *testing.T) {
	node := func(label string, ready corev1.ConditionStatus, ips ...string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{}}}
		if label != "" {
			n.Labels[NodeLabel] = label
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n"})
		for _, ip := range ips {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
		}
		return n
	}
	tests := []struct {
		node *corev1.Node
		want string
	}{
		{node("true", corev1.ConditionTrue, "10.0.0.1", "10.0.0.2"), "10.0.0.1"},
		{node("false", corev1.ConditionTrue, "10.0.0.1"), ""},
		{node("", corev1.ConditionTrue, "10.0.0.1"), ""},
		{node("true", corev1.ConditionFalse, "10.0.0.1"), ""},
		{node("true", corev1.ConditionTrue), ""},
		{node("true", corev1.ConditionTrue, "fd00::1"), "fd00::1"},
	}
	for i, tt := range tests {
		if got := addressOf(tt.node); got != tt.want {
			t.Errorf("%d: addressOf = %q, want %q", i, got, tt.want)
		}
	}
}

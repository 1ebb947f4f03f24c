package framework

import "testing"

func TestFitErrorMessage(t *testing.T) {
	taint := NewStatus(UnschedulableAndUnresolvable, "node(s) had untolerated taint {dedicated: infra}")
	cpu := NewStatus(Unschedulable, "Insufficient cpu")
	for _, tc := range []struct {
		name string
		err  FitError
		want string
	}{
		{"histogram sorted", FitError{NumAllNodes: 3, Diagnosis: Diagnosis{NodeToStatus: NodeToStatus{Statuses: map[string]*Status{
			"a": cpu, "b": taint, "c": cpu}}}},
			"0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, 2 Insufficient cpu."},
		{"several reasons on a node", FitError{NumAllNodes: 1, Diagnosis: Diagnosis{NodeToStatus: NodeToStatus{Statuses: map[string]*Status{
			"a": NewStatus(Unschedulable, "Insufficient cpu", "Insufficient memory")}}}},
			"0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."},
		{"absent nodes", FitError{NumAllNodes: 3, Diagnosis: Diagnosis{NodeToStatus: NodeToStatus{Statuses: map[string]*Status{"a": cpu},
			AbsentStatus: NewStatus(UnschedulableAndUnresolvable, "node(s) didn't satisfy plugin(s) [NodeAffinity]")}}},
			"0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."},
		{"prefilter message", FitError{NumAllNodes: 2, Diagnosis: Diagnosis{PreFilterMsg: "pod affinity terms conflict"}},
			"0/2 nodes are available: pod affinity terms conflict."},
		{"with preemption", FitError{NumAllNodes: 1, Diagnosis: Diagnosis{NodeToStatus: NodeToStatus{Statuses: map[string]*Status{"a": cpu}},
			PostFilterMsg: "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}},
			"0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	var nilStatus *Status
	if !nilStatus.IsSuccess() || nilStatus.Code() != Success || nilStatus.AsError() != nil {
		t.Error("a nil status is success")
	}
	s := NewStatus(Unschedulable, "a", "b").WithPlugin("P")
	if !s.IsRejected() || s.Message() != "a, b" || s.Plugin() != "P" || s.AsError() == nil {
		t.Errorf("status %+v", s)
	}
	if NewStatus(Skip).AsError() != nil {
		t.Error("skip is not an error")
	}
}

func TestHostPortInfo(t *testing.T) {
	h := HostPortInfo{}
	h.Add("", "", 80)
	h.Add("10.0.0.1", "UDP", 53)
	for _, tc := range []struct {
		ip, proto string
		port      int32
		want      bool
	}{
		{"", "TCP", 80, true},
		{"10.0.0.9", "TCP", 80, true},
		{"", "UDP", 80, false},
		{"0.0.0.0", "UDP", 53, true},
		{"10.0.0.2", "UDP", 53, false},
		{"", "", 0, false},
	} {
		if got := h.CheckConflict(tc.ip, tc.proto, tc.port); got != tc.want {
			t.Errorf("CheckConflict(%q, %q, %d) = %v, want %v", tc.ip, tc.proto, tc.port, got, tc.want)
		}
	}
	h.Remove("", "", 80)
	if h.CheckConflict("", "TCP", 80) {
		t.Error("port 80 still taken after Remove")
	}
}

package framework

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// NodeToStatus holds why each node was rejected; nodes not in the map
// have AbsentStatus.
type NodeToStatus struct {
	Statuses map[string]*Status
	// AbsentStatus is the status of the nodes that are not in Statuses
	// (nil: they were not evaluated because enough nodes were found).
	AbsentStatus *Status
}

// NewNodeToStatus returns an empty map.
func NewNodeToStatus() NodeToStatus {
	return NodeToStatus{Statuses: map[string]*Status{}}
}

// Get returns a node's status.
func (m NodeToStatus) Get(name string) *Status {
	if s, ok := m.Statuses[name]; ok {
		return s
	}
	return m.AbsentStatus
}

// NodesForStatusCode lists the nodes of the lister whose status has code.
func (m NodeToStatus) NodesForStatusCode(nodes []*NodeInfo, code Code) []*NodeInfo {
	var out []*NodeInfo
	for _, n := range nodes {
		if m.Get(n.Node().Name).Code() == code {
			out = append(out, n)
		}
	}
	return out
}

// The heads of upstream's messages.
const (
	// NoNodeAvailableMsg starts the message of a pod that fits nowhere.
	NoNodeAvailableMsg = "0/%v nodes are available"
)

// Diagnosis records why a pod fits nowhere.
type Diagnosis struct {
	NodeToStatus NodeToStatus
	// UnschedulablePlugins are the plugins that rejected the pod, to
	// decide which cluster events retry it.
	UnschedulablePlugins sets.Set[string]
	// PreFilterMsg is the message of a PreFilter that rejected the pod.
	PreFilterMsg string
	// PostFilterMsg is the message of the PostFilter (preemption).
	PostFilterMsg string
}

// FitError is the error of a pod that fits on no node.
type FitError struct {
	Pod         *corev1.Pod
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Error renders upstream's message: "0/3 nodes are available: 1 node(s)
// had untolerated taint {a: b}, 2 Insufficient cpu. preemption: ...".
func (f *FitError) Error() string {
	msg := fmt.Sprintf(NoNodeAvailableMsg+":", f.NumAllNodes)
	if f.Diagnosis.PreFilterMsg != "" {
		msg += " " + f.Diagnosis.PreFilterMsg + "."
	} else if reasons := f.Diagnosis.NodeToStatus.histogram(f.NumAllNodes); reasons != "" {
		msg += " " + reasons + "."
	}
	if pf := f.Diagnosis.PostFilterMsg; pf != "" {
		msg += " " + pf
		if !strings.HasSuffix(pf, ".") {
			msg += "."
		}
	}
	return msg
}

// histogram counts each reason over the nodes, "N reason" sorted.
func (m NodeToStatus) histogram(numAllNodes int) string {
	counts := map[string]int{}
	for _, s := range m.Statuses {
		for _, r := range s.Reasons() {
			counts[r]++
		}
	}
	if absent := numAllNodes - len(m.Statuses); absent > 0 && m.AbsentStatus != nil {
		for _, r := range m.AbsentStatus.Reasons() {
			counts[r] += absent
		}
	}
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

package framework

// EventResource is the kind of object a cluster event is about.
type EventResource string

// The resources whose changes may make pods schedulable.
const (
	// Pod events are about assigned pods (unscheduled pods' own updates
	// are handled by the queue).
	Pod       EventResource = "Pod"
	Node      EventResource = "Node"
	Namespace EventResource = "Namespace"
	// The storage objects VolumeBinding and VolumeRestrictions read.
	PersistentVolumeClaim EventResource = "PersistentVolumeClaim"
	PersistentVolume      EventResource = "PersistentVolume"
	StorageClass          EventResource = "storage.k8s.io/StorageClass"
	CSIStorageCapacity    EventResource = "storage.k8s.io/CSIStorageCapacity"
	// WildCard matches every resource.
	WildCard EventResource = "*"
)

// ActionType is a bit set of what happened to an object.
type ActionType int64

// The actions, as upstream's framework names them.
const (
	Add ActionType = 1 << iota
	Delete
	UpdateNodeAllocatable
	UpdateNodeLabel
	UpdateNodeTaint
	UpdateNodeCondition
	UpdateNodeSpecUnschedulable
	UpdatePodLabel
	UpdatePodScaleDown
	// UpdateObject is an update of an object whose changes are not told
	// apart (claims, volumes, classes, capacities).
	UpdateObject

	// Update is any update.
	Update = UpdateNodeAllocatable | UpdateNodeLabel | UpdateNodeTaint | UpdateNodeCondition |
		UpdateNodeSpecUnschedulable | UpdatePodLabel | UpdatePodScaleDown | UpdateObject
	// All is every action.
	All = Add | Delete | Update
)

// ClusterEvent is a change of the cluster.
type ClusterEvent struct {
	Resource   EventResource
	ActionType ActionType
	// Label names the event in logs.
	Label string
}

// Match reports whether e (an event that happened) is one registered
// matches.
func (registered ClusterEvent) Match(e ClusterEvent) bool {
	return (registered.Resource == WildCard || registered.Resource == e.Resource) &&
		registered.ActionType&e.ActionType != 0
}

// Events that happen.
var (
	EventNodeAdd            = ClusterEvent{Resource: Node, ActionType: Add, Label: "NodeAdd"}
	EventAssignedPodAdd     = ClusterEvent{Resource: Pod, ActionType: Add, Label: "AssignedPodAdd"}
	EventAssignedPodDelete  = ClusterEvent{Resource: Pod, ActionType: Delete, Label: "AssignedPodDelete"}
	EventUnschedulableFlush = ClusterEvent{Resource: WildCard, ActionType: All, Label: "UnschedulableTimeout"}
	// EventNamespaceAddOrLabel: a namespace came or its labels changed
	// (namespace selectors of affinity terms); UpdatePodLabel stands for
	// its label change.
	EventNamespaceAddOrLabel = ClusterEvent{Resource: Namespace, ActionType: Add | UpdatePodLabel, Label: "NamespaceChange"}
)

// Package scheduler is Havre's kube-scheduler: it assigns pods whose
// spec.schedulerName is its profile's ("default-scheduler") and that have
// no spec.nodeName to nodes, through the plugins of
// internal/scheduler/plugins run at the framework's extension points.
//
// The hot path makes no API call: a Cache of node infos, fed by informers
// and by the pods the scheduler assumed, is copied incrementally into a
// Snapshot at the start of every cycle; the scheduling Queue orders
// pending pods by priority, backs off failed ones and retries
// unschedulable pods when a cluster event may help them. Bindings run in
// goroutines of their own: PreBind plugins first (VolumeBinding waits
// there for the pod's claims to be bound), then pods/binding; pods that
// fit nowhere
// get a FailedScheduling Event and PodScheduled=False, and preemption may
// nominate a node for them.
package scheduler

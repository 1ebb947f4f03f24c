// Package apps holds the strategies for the apps/v1 kinds: Deployments,
// ReplicaSets, StatefulSets, DaemonSets and ControllerRevisions. Their pod
// templates are defaulted and validated with the core pod rules, at
// spec.template paths.
package apps

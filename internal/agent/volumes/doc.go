// Package volumes holds what the node agent needs to put storage into
// pods, apart from the agent's pod workers: resolving a pod's
// persistentVolumeClaim and generic ephemeral volumes to the host directory
// of their bound PersistentVolume (claims.go), giving a volume to the pod's
// fsGroup as the kubelet's SetVolumeOwnership does (ownership.go),
// resolving and bind-mounting subPaths without ever following a path out of
// their volume (subpath.go), and measuring a volume's usage (usage.go).
//
// It must never create, bind, provision or delete volumes or claims (the
// PersistentVolume controller and the provisioner do), nor write to the
// API: it reads claims and volumes, and touches only the host paths it is
// given.
package volumes

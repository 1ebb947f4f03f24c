// Package volume holds the names Havre's storage parts agree on: the
// provisioner of the built-in local volumes, its default StorageClass, and
// the annotations and labels (upstream's where upstream has one) that pass
// a claim from the PersistentVolume controller to the scheduler, from the
// scheduler to the node agent that provisions it, and from a snapshot to
// the node that holds it.
//
// The flow of a claim of the default class (WaitForFirstConsumer):
//
//  1. The API server gives a claim without a class the default class
//     (`storageclass.kubernetes.io/is-default-class`) and the
//     `kubernetes.io/pvc-protection` finalizer.
//  2. The PersistentVolume controller (internal/controller/volume/persistentvolume)
//     finds no volume to bind and, the class being WaitForFirstConsumer,
//     waits (event WaitForFirstConsumer).
//  3. The scheduler's VolumeBinding plugin places the pod on a node whose
//     published capacity (a CSIStorageCapacity in kube-system for the class
//     and the node) fits the claims, writes AnnSelectedNode and
//     AnnStorageProvisioner on the claim, and waits in PreBind for it to be
//     bound.
//  4. The agent of the selected node (internal/volume/provisioner) creates
//     the volume on its backing (internal/volume/local) and a `local`
//     PersistentVolume pre-bound to the claim, with node affinity to the
//     node; the PersistentVolume controller binds the pair.
//  5. The agent bind-mounts the volume into the pod's containers.
//  6. Deleting the claim releases the volume; with reclaim policy Delete
//     the agent deletes the backing and the PersistentVolume, with Retain
//     both stay.
package volume

// Provisioner is the provisioner (StorageClass.provisioner) and the
// snapshot driver (VolumeSnapshotClass.driver) of Havre's local volumes.
const Provisioner = "havre.io/local"

// DefaultClass is the name of the StorageClass the server creates at start
// (marked default, WaitForFirstConsumer, Delete, expansion allowed) unless
// one of that name exists.
const DefaultClass = "local"

// Upstream's annotations.
const (
	// AnnDefaultClass marks the default StorageClass.
	AnnDefaultClass = "storageclass.kubernetes.io/is-default-class"
	// AnnSelectedNode on a claim: the node the scheduler chose for it.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnStorageProvisioner on a claim: the provisioner expected to
	// provision it (and AnnBetaStorageProvisioner, its older name, which
	// upstream still writes).
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnProvisionedBy on a volume: the provisioner that created it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnBindCompleted and AnnBoundByController, as the PersistentVolume
	// controller writes them.
	AnnBindCompleted     = "pv.kubernetes.io/bind-completed"
	AnnBoundByController = "pv.kubernetes.io/bound-by-controller"
	// PVCProtectionFinalizer and PVProtectionFinalizer keep a claim or a
	// volume in use from going away.
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// Havre's own annotations and labels.
const (
	// AnnBacking on a PersistentVolume and on a Node: how the node stores
	// its local volumes ("btrfs", "xfs", "loop" or "dir"); "dir" does not
	// enforce sizes, and the agent says so in an Event.
	AnnBacking = "havre.io/volume-backing"
	// AnnSnapshotNode on a VolumeSnapshotContent: the node holding the
	// snapshot (a restore must be provisioned there).
	AnnSnapshotNode = "havre.io/node"
	// CapacityNamespace holds the CSIStorageCapacity objects the agents
	// publish: one per node and class of Provisioner, named
	// CapacityName(node, class), with nodeTopology matching the node's
	// kubernetes.io/hostname label.
	CapacityNamespace = "kube-system"
)

// CapacityName is the name of the CSIStorageCapacity a node publishes for
// a class.
func CapacityName(node, class string) string { return "havre-" + class + "-" + node }

// Package snapshotapi installs the volume snapshot API,
// snapshot.storage.k8s.io/v1 (VolumeSnapshot, VolumeSnapshotContent,
// VolumeSnapshotClass), into a Havre server: upstream's
// CustomResourceDefinitions from external-snapshotter, embedded unchanged
// (crds/, copied from the client module by `go generate`), and the default
// VolumeSnapshotClass of Havre's local volumes. It also holds the names
// (finalizers, annotations) the snapshot controller and the agents'
// snapshotters share, as upstream spells them.
//
// It never edits the embedded definitions: they are the API, and a test
// checks them against the module's.
package snapshotapi

//go:generate sh -c "for f in \"$(go list -m -f '{{.Dir}}' github.com/kubernetes-csi/external-snapshotter/client/v8)\"/config/crd/snapshot.storage.k8s.io_*.yaml; do install -m 0644 \"$f\" crds/; done"

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapshotclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/havre/havre/internal/volume"
)

// Module is the Go module whose types, clients and definitions Havre
// serves.
const Module = "github.com/kubernetes-csi/external-snapshotter/client/v8"

// Upstream's finalizers and annotations (external-snapshotter's pkg/utils).
const (
	// VolumeSnapshotContentFinalizer is on every bound content until the
	// snapshotter has deleted (or, with Retain, let go of) its snapshot.
	VolumeSnapshotContentFinalizer = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
	// VolumeSnapshotBoundFinalizer keeps a snapshot bound to a content of
	// policy Delete until the content is gone.
	VolumeSnapshotBoundFinalizer = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
	// VolumeSnapshotAsSourceFinalizer keeps a snapshot while a claim is
	// being restored from it.
	VolumeSnapshotAsSourceFinalizer = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
	// PVCFinalizer keeps a claim while a snapshot of it is being taken.
	PVCFinalizer = "snapshot.storage.kubernetes.io/pvc-as-source-protection"
	// AnnIsDefaultClass marks the default VolumeSnapshotClass of a driver.
	AnnIsDefaultClass = "snapshot.storage.kubernetes.io/is-default-class"
	// AnnBeingDeleted on a content: its snapshot is being deleted, the
	// snapshotter may act on the content's deletion.
	AnnBeingDeleted = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
	// AnnBeingCreated on a content: the snapshotter is taking its snapshot.
	AnnBeingCreated = "snapshot.storage.kubernetes.io/volumesnapshot-being-created"
)

// AnnBundleVersion on an installed definition: the version of Module its
// spec came from. The server updates definitions that carry an older one
// and leaves alone those without it (installed by someone else).
const AnnBundleVersion = "havre.io/snapshot-crd-version"

// DefaultClass is the VolumeSnapshotClass of Havre's local volumes the
// server creates at start unless one of that name exists.
const DefaultClass = "local"

//go:embed crds/*.yaml
var crdFiles embed.FS

// BundleVersion is the version of Module this binary was built with (the
// one go.mod requires), or "" when the build records none.
func BundleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range info.Deps {
		if m.Path == Module {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

// Files returns the embedded manifests by file name.
func Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(crdFiles, "crds", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := crdFiles.ReadFile(path)
		files[d.Name()] = data
		return err
	})
	return files, err
}

// Definitions returns the three definitions, decoded strictly (an unknown
// field is an error), with AnnBundleVersion set.
func Definitions() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := Files()
	if err != nil {
		return nil, err
	}
	bundle := BundleVersion()
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := bytes.TrimPrefix(bytes.TrimSpace(files[name]), []byte("---"))
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return nil, fmt.Errorf("embedded definition %s: %w", name, err)
		}
		if bundle != "" {
			metav1.SetMetaDataAnnotation(&crd.ObjectMeta, AnnBundleVersion, bundle)
		}
		out = append(out, crd)
	}
	if len(out) != 3 {
		return nil, fmt.Errorf("%d embedded definitions, want 3 (run go generate ./internal/volume/snapshotapi)", len(out))
	}
	return out, nil
}

// InstallDefinitions creates the definitions that are missing and updates
// those installed from an older bundle version.
func InstallDefinitions(ctx context.Context, client apiextensionsclient.Interface) error {
	crds, err := Definitions()
	if err != nil {
		return err
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		_, err := api.Create(ctx, crd, metav1.CreateOptions{})
		if err == nil {
			slog.Info("installed a snapshot API definition", "crd", crd.Name, "version", crd.Annotations[AnnBundleVersion])
			continue
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CustomResourceDefinition %s: %w", crd.Name, err)
		}
		old, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading CustomResourceDefinition %s: %w", crd.Name, err)
		}
		if !Newer(crd.Annotations[AnnBundleVersion], old.Annotations[AnnBundleVersion]) {
			continue
		}
		updated := old.DeepCopy()
		updated.Spec = crd.Spec
		for k, v := range crd.Annotations {
			metav1.SetMetaDataAnnotation(&updated.ObjectMeta, k, v)
		}
		if _, err := api.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating CustomResourceDefinition %s to %s: %w", crd.Name, crd.Annotations[AnnBundleVersion], err)
		}
		slog.Info("updated a snapshot API definition", "crd", crd.Name,
			"from", old.Annotations[AnnBundleVersion], "to", crd.Annotations[AnnBundleVersion])
	}
	return nil
}

// Newer reports whether the installed definition of bundle version
// installed is to be replaced by ours: only when both are versions and
// ours is the greater. A definition without the annotation was not
// installed by Havre and stays as it is.
func Newer(ours, installed string) bool {
	if ours == "" || installed == "" {
		return false
	}
	o, err := version.ParseSemantic(ours)
	if err != nil {
		return false
	}
	i, err := version.ParseSemantic(installed)
	if err != nil {
		return false
	}
	return i.LessThan(o)
}

// LocalClass is the default VolumeSnapshotClass of Havre's local volumes.
func LocalClass() *snapshotv1.VolumeSnapshotClass {
	return &snapshotv1.VolumeSnapshotClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultClass,
			Annotations: map[string]string{AnnIsDefaultClass: "true"},
		},
		Driver:         volume.Provisioner,
		DeletionPolicy: snapshotv1.VolumeSnapshotContentDelete,
	}
}

// EnsureDefaultClass creates LocalClass unless a class of its name exists.
// The definitions may not be served yet (they are established by the
// server's crd controller): it retries until they are, or ctx ends.
func EnsureDefaultClass(ctx context.Context, client snapshotclient.Interface) error {
	backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Cap: 5 * time.Second, Steps: 1 << 30}
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		_, err := client.SnapshotV1().VolumeSnapshotClasses().Create(ctx, LocalClass(), metav1.CreateOptions{})
		switch {
		case err == nil:
			slog.Info("created the default VolumeSnapshotClass", "class", DefaultClass)
			return true, nil
		case apierrors.IsAlreadyExists(err):
			return true, nil
		case apierrors.IsNotFound(err):
			// Not served yet.
			last = err
			return false, nil
		default:
			last = err
			return false, nil
		}
	})
	if err != nil {
		return fmt.Errorf("creating the default VolumeSnapshotClass %q: %w (last error: %v)", DefaultClass, err, last)
	}
	return nil
}

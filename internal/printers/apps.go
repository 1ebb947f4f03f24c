package printers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The descriptions are upstream's, taken from the older API versions its
// printers quote.
func init() {
	apps := appsv1.SchemeGroupVersion
	register(apps.WithKind("ControllerRevision"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Controller", "string", "Controller of the object"),
		column("Revision", "string", appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]),
		ageColumn,
	}, printControllerRevision)
	register(apps.WithKind("DaemonSet"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Desired", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["desiredNumberScheduled"]),
		column("Current", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["currentNumberScheduled"]),
		column("Ready", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberReady"]),
		column("Up-to-date", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["updatedNumberScheduled"]),
		column("Available", "integer", extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()["numberAvailable"]),
		column("Node Selector", "string", corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
		ageColumn,
		containersColumn,
		imagesColumn,
		wideColumn("Selector", "string", extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()["selector"]),
	}, printDaemonSet)
	register(apps.WithKind("Deployment"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Ready", "string", "Number of the pod with ready state"),
		column("Up-to-date", "string", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["updatedReplicas"]),
		column("Available", "string", extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()["availableReplicas"]),
		ageColumn,
		containersColumn,
		imagesColumn,
		wideColumn("Selector", "string", extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"]),
	}, printDeployment)
	register(apps.WithKind("ReplicaSet"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Desired", "integer", extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["replicas"]),
		column("Current", "integer", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["replicas"]),
		column("Ready", "integer", extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()["readyReplicas"]),
		ageColumn,
		containersColumn,
		imagesColumn,
		wideColumn("Selector", "string", extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()["selector"]),
	}, printReplicaSet)
	register(apps.WithKind("StatefulSet"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Ready", "string", "Number of the pod with ready state"),
		ageColumn,
		containersColumn,
		imagesColumn,
	}, printStatefulSet)
}

func printControllerRevision(cr *appsv1.ControllerRevision) (metav1.TableRow, error) {
	controller := "<none>"
	if ref := metav1.GetControllerOf(cr); ref != nil {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return metav1.TableRow{}, err
		}
		controller = ref.Name
		if gk := gv.WithKind(ref.Kind).GroupKind(); !gk.Empty() {
			controller = strings.ToLower(gk.String()) + "/" + ref.Name
		}
	}
	return cells(cr.Name, controller, cr.Revision, age(cr.CreationTimestamp))
}

func printDaemonSet(ds *appsv1.DaemonSet) (metav1.TableRow, error) {
	names, images := containerCells(ds.Spec.Template.Spec.Containers)
	s := ds.Status
	return cells(ds.Name, int64(s.DesiredNumberScheduled), int64(s.CurrentNumberScheduled), int64(s.NumberReady),
		int64(s.UpdatedNumberScheduled), int64(s.NumberAvailable), labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		age(ds.CreationTimestamp), names, images, metav1.FormatLabelSelector(ds.Spec.Selector))
}

func printDeployment(d *appsv1.Deployment) (metav1.TableRow, error) {
	selector := "<invalid>"
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = sel.String()
	}
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	return cells(d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref(d.Spec.Replicas, 0)),
		int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), age(d.CreationTimestamp),
		names, images, selector)
}

func printReplicaSet(rs *appsv1.ReplicaSet) (metav1.TableRow, error) {
	names, images := containerCells(rs.Spec.Template.Spec.Containers)
	return cells(rs.Name, int64(deref(rs.Spec.Replicas, 0)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp), names, images, metav1.FormatLabelSelector(rs.Spec.Selector))
}

func printStatefulSet(ss *appsv1.StatefulSet) (metav1.TableRow, error) {
	names, images := containerCells(ss.Spec.Template.Spec.Containers)
	return cells(ss.Name, fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, deref(ss.Spec.Replicas, 0)),
		age(ss.CreationTimestamp), names, images)
}

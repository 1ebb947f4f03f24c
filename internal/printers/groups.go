package printers

import (
	"fmt"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The printers of the smaller API groups.
func init() {
	// Upstream's printers quoted autoscaling/v2beta1 for the descriptions,
	// a version k8s.io/api no longer has; these quote v2.
	register(autoscalingv2.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Reference", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]),
		column("Targets", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]),
		column("MinPods", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]),
		column("MaxPods", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]),
		column("Replicas", "string", autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]),
		ageColumn,
	}, printHorizontalPodAutoscaler)
	// The scale subresource, for `kubectl get --subresource=scale`; its
	// NAME column has no "name" format upstream either.
	register(autoscalingv1.SchemeGroupVersion.WithKind("Scale"), []metav1.TableColumnDefinition{
		column("Name", "string", metav1.ObjectMeta{}.SwaggerDoc()["name"]),
		column("Desired", "integer", autoscalingv1.ScaleSpec{}.SwaggerDoc()["replicas"]),
		column("Available", "integer", autoscalingv1.ScaleStatus{}.SwaggerDoc()["replicas"]),
		ageColumn,
	}, func(s *autoscalingv1.Scale) (metav1.TableRow, error) {
		return cells(s.Name, int64(s.Spec.Replicas), int64(s.Status.Replicas), age(s.CreationTimestamp))
	})
	register(coordinationv1.SchemeGroupVersion.WithKind("Lease"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
		ageColumn,
	}, func(l *coordinationv1.Lease) (metav1.TableRow, error) {
		return cells(l.Name, deref(l.Spec.HolderIdentity, ""), age(l.CreationTimestamp))
	})
	register(policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Min Available", "string", "The minimum number of pods that must be available."),
		column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
		column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
		ageColumn,
	}, printPodDisruptionBudget)
	register(schedulingv1.SchemeGroupVersion.WithKind("PriorityClass"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Value", "integer", schedulingv1.PriorityClass{}.SwaggerDoc()["value"]),
		column("Global-Default", "boolean", schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]),
		ageColumn,
		column("PreemptionPolicy", "string", schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"]),
	}, func(pc *schedulingv1.PriorityClass) (metav1.TableRow, error) {
		policy := ""
		if pc.PreemptionPolicy != nil {
			policy = string(*pc.PreemptionPolicy)
		}
		return cells(pc.Name, int64(pc.Value), pc.GlobalDefault, age(pc.CreationTimestamp), policy)
	})
	register(storagev1.SchemeGroupVersion.WithKind("StorageClass"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Provisioner", "string", storagev1.StorageClass{}.SwaggerDoc()["provisioner"]),
		column("ReclaimPolicy", "string", storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]),
		column("VolumeBindingMode", "string", storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]),
		column("AllowVolumeExpansion", "string", storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]),
		ageColumn,
	}, printStorageClass)
	register(storagev1.SchemeGroupVersion.WithKind("CSIStorageCapacity"), []metav1.TableColumnDefinition{
		nameColumn,
		column("StorageClassName", "string", storagev1.CSIStorageCapacity{}.SwaggerDoc()["storageClassName"]),
		column("Capacity", "string", storagev1.CSIStorageCapacity{}.SwaggerDoc()["capacity"]),
	}, printCSIStorageCapacity)
	register(storagev1.SchemeGroupVersion.WithKind("CSIDriver"), []metav1.TableColumnDefinition{
		nameColumn,
		column("AttachRequired", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]),
		column("PodInfoOnMount", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]),
		column("StorageCapacity", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]),
		column("TokenRequests", "string", storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"]),
		column("RequiresRepublish", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]),
		column("Modes", "string", storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"]),
		ageColumn,
	}, printCSIDriver)
	register(storagev1.SchemeGroupVersion.WithKind("CSINode"), []metav1.TableColumnDefinition{
		nameColumn,
		column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
		ageColumn,
	}, func(n *storagev1.CSINode) (metav1.TableRow, error) {
		return cells(n.Name, int64(len(n.Spec.Drivers)), age(n.CreationTimestamp))
	})
	// Upstream gives the ATTACHER column the "name" format too.
	register(storagev1.SchemeGroupVersion.WithKind("VolumeAttachment"), []metav1.TableColumnDefinition{
		nameColumn,
		{Name: "Attacher", Type: "string", Format: "name", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]},
		column("PV", "string", storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]),
		column("Node", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]),
		column("Attached", "boolean", storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]),
		ageColumn,
	}, func(va *storagev1.VolumeAttachment) (metav1.TableRow, error) {
		return cells(va.Name, va.Spec.Attacher, deref(va.Spec.Source.PersistentVolumeName, ""), va.Spec.NodeName,
			va.Status.Attached, age(va.CreationTimestamp))
	})
	register(storagev1.SchemeGroupVersion.WithKind("VolumeAttributesClass"), []metav1.TableColumnDefinition{
		nameColumn,
		column("DriverName", "string", storagev1.VolumeAttributesClass{}.SwaggerDoc()["driverName"]),
		ageColumn,
	}, func(c *storagev1.VolumeAttributesClass) (metav1.TableRow, error) {
		return cells(c.Name, c.DriverName, age(c.CreationTimestamp))
	})
}

func printPodDisruptionBudget(pdb *policyv1.PodDisruptionBudget) (metav1.TableRow, error) {
	minAvailable, maxUnavailable := "N/A", "N/A"
	if pdb.Spec.MinAvailable != nil {
		minAvailable = pdb.Spec.MinAvailable.String()
	}
	if pdb.Spec.MaxUnavailable != nil {
		maxUnavailable = pdb.Spec.MaxUnavailable.String()
	}
	return cells(pdb.Name, minAvailable, maxUnavailable, int64(pdb.Status.DisruptionsAllowed), age(pdb.CreationTimestamp))
}

// The annotations marking the default StorageClass.
const (
	isDefaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaIsDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func printStorageClass(sc *storagev1.StorageClass) (metav1.TableRow, error) {
	name := sc.Name
	if sc.Annotations[isDefaultStorageClassAnnotation] == "true" || sc.Annotations[betaIsDefaultStorageClassAnnotation] == "true" {
		name += " (default)"
	}
	return cells(name, sc.Provisioner,
		string(deref(sc.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete)),
		string(deref(sc.VolumeBindingMode, storagev1.VolumeBindingImmediate)),
		deref(sc.AllowVolumeExpansion, false), age(sc.CreationTimestamp))
}

// printCSIStorageCapacity prints the capacity, "<unset>" when the driver
// published none (which means none is available); upstream prints no age.
func printCSIStorageCapacity(c *storagev1.CSIStorageCapacity) (metav1.TableRow, error) {
	capacity := "<unset>"
	if c.Capacity != nil {
		capacity = c.Capacity.String()
	}
	return cells(c.Name, c.StorageClassName, capacity)
}

// printCSIDriver prints a driver as upstream: unset booleans as their
// defaults, the token audiences ("<unset>" without token requests) and the
// lifecycle modes ("<none>" without any).
func printCSIDriver(d *storagev1.CSIDriver) (metav1.TableRow, error) {
	tokenRequests := "<unset>"
	if d.Spec.TokenRequests != nil {
		audiences := make([]string, 0, len(d.Spec.TokenRequests))
		for _, t := range d.Spec.TokenRequests {
			audiences = append(audiences, t.Audience)
		}
		tokenRequests = strings.Join(audiences, ",")
	}
	modes := make([]string, 0, len(d.Spec.VolumeLifecycleModes))
	for _, m := range d.Spec.VolumeLifecycleModes {
		modes = append(modes, string(m))
	}
	modesCell := strings.Join(modes, ",")
	if modesCell == "" {
		modesCell = "<none>"
	}
	return cells(d.Name, deref(d.Spec.AttachRequired, true), deref(d.Spec.PodInfoOnMount, false),
		deref(d.Spec.StorageCapacity, false), tokenRequests, deref(d.Spec.RequiresRepublish, false),
		modesCell, age(d.CreationTimestamp))
}

func printHorizontalPodAutoscaler(hpa *autoscalingv2.HorizontalPodAutoscaler) (metav1.TableRow, error) {
	ref := hpa.Spec.ScaleTargetRef.Kind + "/" + hpa.Spec.ScaleTargetRef.Name
	minPods := "<unset>"
	if hpa.Spec.MinReplicas != nil {
		minPods = fmt.Sprintf("%d", *hpa.Spec.MinReplicas)
	}
	return cells(hpa.Name, ref, hpaMetrics(hpa.Spec.Metrics, hpa.Status.CurrentMetrics), minPods,
		int64(hpa.Spec.MaxReplicas), int64(hpa.Status.CurrentReplicas), age(hpa.CreationTimestamp))
}

// hpaMetrics prints the first two metrics of an HPA as "current/target",
// with how many more there are.
func hpaMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	const max = 2
	list := make([]string, 0, len(specs))
	for i, spec := range specs {
		var status *autoscalingv2.MetricStatus
		if i < len(statuses) {
			status = &statuses[i]
		}
		list = append(list, hpaMetric(spec, status))
	}
	if len(list) > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), len(list)-max)
	}
	return strings.Join(list, ", ")
}

// hpaMetric prints one metric's current value (or "<unknown>") against its
// target; a spec without its source (invalid) prints as an unknown type.
func hpaMetric(spec autoscalingv2.MetricSpec, status *autoscalingv2.MetricStatus) string {
	current := "<unknown>"
	switch spec.Type {
	case autoscalingv2.ExternalMetricSourceType:
		if spec.External == nil {
			break
		}
		if spec.External.Target.AverageValue != nil {
			if status != nil && status.External != nil && status.External.Current.AverageValue != nil {
				current = status.External.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", current, spec.External.Target.AverageValue.String())
		}
		if status != nil && status.External != nil {
			current = status.External.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.External.Target.Value.String())
	case autoscalingv2.PodsMetricSourceType:
		if spec.Pods == nil {
			break
		}
		if status != nil && status.Pods != nil {
			current = status.Pods.Current.AverageValue.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.Pods.Target.AverageValue.String())
	case autoscalingv2.ObjectMetricSourceType:
		if spec.Object == nil {
			break
		}
		if spec.Object.Target.AverageValue != nil {
			if status != nil && status.Object != nil && status.Object.Current.AverageValue != nil {
				current = status.Object.Current.AverageValue.String()
			}
			return fmt.Sprintf("%s/%s (avg)", current, spec.Object.Target.AverageValue.String())
		}
		if status != nil && status.Object != nil {
			current = status.Object.Current.Value.String()
		}
		return fmt.Sprintf("%s/%s", current, spec.Object.Target.Value.String())
	case autoscalingv2.ResourceMetricSourceType:
		if spec.Resource == nil {
			break
		}
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.Resource != nil {
			cur = &status.Resource.Current
		}
		return resourceMetric(spec.Resource.Name, spec.Resource.Target, cur)
	case autoscalingv2.ContainerResourceMetricSourceType:
		if spec.ContainerResource == nil {
			break
		}
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.ContainerResource != nil {
			cur = &status.ContainerResource.Current
		}
		return resourceMetric(spec.ContainerResource.Name, spec.ContainerResource.Target, cur)
	}
	return "<unknown type>"
}

// resourceMetric prints a (container) resource metric as
// "cpu: current/target", by average value or utilisation.
func resourceMetric(name corev1.ResourceName, target autoscalingv2.MetricTarget, current *autoscalingv2.MetricValueStatus) string {
	cur := "<unknown>"
	if target.AverageValue != nil {
		if current != nil {
			cur = current.AverageValue.String()
		}
		return fmt.Sprintf("%s: %s/%s", name.String(), cur, target.AverageValue.String())
	}
	if current != nil && current.AverageUtilization != nil {
		cur = fmt.Sprintf("%d%%", *current.AverageUtilization)
	}
	tgt := "<auto>"
	if target.AverageUtilization != nil {
		tgt = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name.String(), cur, tgt)
}

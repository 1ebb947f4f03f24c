//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestEvent(t *testing.T) {
	s := EventStrategy{}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.17a", Namespace: "default"}, Reason: "Pulled", Type: "Normal",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Source: corev1.EventSource{Component: "kubelet"}}
	checkErrors(t, s.Validate(ctx, ev))
	bad := ev.DeepCopy()
	bad.InvolvedObject.Namespace = "other"
	checkErrors(t, s.Validate(ctx, bad), want{"involvedObject.namespace", field.ErrorTypeInvalid})
	newStyle := ev.DeepCopy()
	newStyle.EventTime = metav1.NowMicro()
	checkErrors(t, s.Validate(ctx, newStyle), want{"reportingComponent", field.ErrorTypeRequired},
		want{"reportingInstance", field.ErrorTypeRequired}, want{"action", field.ErrorTypeRequired})

	got := s.SelectableFields(ev)
	if len(got) != 11 || len(s.SelectableFields(&corev1.Event{})) != 11 || got["involvedObject.name"] != "web" || got["source"] != "kubelet" || got["type"] != "Normal" {
		t.Errorf("fields = %v", got)
	}
}

func TestEndpoints(t *testing.T) {
	s := EndpointsStrategy{}
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5"}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
	}}}
	s.Default(ep)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("protocol = %q", ep.Subsets[0].Ports[0].Protocol)
	}
	checkErrors(t, s.Validate(ctx, ep))
	bad := ep.DeepCopy()
	bad.Subsets[0].Addresses[0].IP = "127.0.0.1"
	bad.Subsets[0].Ports[1].Name = ""
	checkErrors(t, s.Validate(ctx, bad), want{"subsets[0].addresses[0].ip", field.ErrorTypeInvalid}, want{"subsets[0].ports[1].name", field.ErrorTypeRequired})
	checkErrors(t, s.Validate(ctx, &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{}}}), want{"subsets[0]", field.ErrorTypeRequired})
}

func TestLimitRange(t *testing.T) {
	s := LimitRangeStrategy{}
	q := resource.MustParse
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type: corev1.LimitTypeContainer,
		Max:  corev1.ResourceList{corev1.ResourceCPU: q("2")},
		Min:  corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
	}}}}
	s.Default(lr)
	item := lr.Spec.Limits[0]
	if item.Default.Cpu().String() != "2" || item.DefaultRequest.Cpu().String() != "2" || item.DefaultRequest.Memory().String() != "64Mi" {
		t.Errorf("defaults: %+v", item)
	}
	checkErrors(t, s.Validate(ctx, lr))
	bad := lr.DeepCopy()
	bad.Spec.Limits[0].Min[corev1.ResourceCPU] = q("4")
	bad.Spec.Limits = append(bad.Spec.Limits, corev1.LimitRangeItem{Type: corev1.LimitTypePod, Default: corev1.ResourceList{corev1.ResourceCPU: q("1")}})
	checkErrors(t, s.Validate(ctx, bad),
		want{"spec.limits[0].min[cpu]", field.ErrorTypeInvalid},            // min > max
		want{"spec.limits[0].defaultRequest[cpu]", field.ErrorTypeInvalid}, // min > defaultRequest
		want{"spec.limits[0].default[cpu]", field.ErrorTypeInvalid},        // min > default
		want{"spec.limits[1].default", field.ErrorTypeForbidden})
}

func TestResourceQuota(t *testing.T) {
	s := ResourceQuotaStrategy{}
	rq := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("4")}},
		Status: corev1.ResourceQuotaStatus{Used: corev1.ResourceList{"pods": resource.MustParse("3")}}}
	s.PrepareForCreate(ctx, rq)
	if rq.Status.Used != nil {
		t.Error("status not cleared")
	}
	checkErrors(t, s.Validate(ctx, rq))
	bad := rq.DeepCopy()
	bad.Spec.Hard["pods"] = resource.MustParse("-1")
	bad.Spec.Scopes = []corev1.ResourceQuotaScope{"Sometimes"}
	checkErrors(t, s.Validate(ctx, bad), want{"spec.hard[pods]", field.ErrorTypeInvalid}, want{"spec.scopes[0]", field.ErrorTypeNotSupported})
	bad.Status.Used = corev1.ResourceList{"pods": resource.MustParse("-1")}
	checkErrors(t, s.ValidateStatusUpdate(ctx, bad, rq), want{"status.used[pods]", field.ErrorTypeInvalid})
}

func validPVC() *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: new("local"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	s := PersistentVolumeClaimStrategy{}
	s.Default(pvc)
	s.PrepareForCreate(ctx, pvc)
	return pvc
}

func TestPersistentVolumeClaim(t *testing.T) {
	s := PersistentVolumeClaimStrategy{}
	pvc := validPVC()
	if *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pvc.Status.Phase != corev1.ClaimPending {
		t.Errorf("defaults: %+v", pvc)
	}
	checkErrors(t, s.Validate(ctx, pvc))
	bad := validPVC()
	bad.Spec.AccessModes = nil
	bad.Spec.Resources.Requests = nil
	checkErrors(t, s.Validate(ctx, bad), want{"spec.accessModes", field.ErrorTypeRequired}, want{"spec.resources[storage]", field.ErrorTypeRequired})
	bad = validPVC()
	bad.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany, "WriteOnly"}
	bad.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("0")
	checkErrors(t, s.Validate(ctx, bad), want{"spec.accessModes", field.ErrorTypeNotSupported},
		want{"spec.accessModes", field.ErrorTypeForbidden}, want{"spec.resources[storage]", field.ErrorTypeInvalid})

	// Binding sets volumeName once; the rest is immutable until bound.
	upd := pvc.DeepCopy()
	upd.Spec.VolumeName = "pv-1"
	checkErrors(t, s.ValidateUpdate(ctx, upd, pvc))
	upd = pvc.DeepCopy()
	upd.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	checkErrors(t, s.ValidateUpdate(ctx, upd, pvc), want{"spec", field.ErrorTypeForbidden})
	bound := pvc.DeepCopy()
	bound.Spec.VolumeName = "pv-1"
	bound.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	upd = bound.DeepCopy()
	upd.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	checkErrors(t, s.ValidateUpdate(ctx, upd, bound))

	// A claim without a class may get one (the retroactive default class),
	// not lose or change it, nor get "".
	noClass := pvc.DeepCopy()
	noClass.Spec.StorageClassName = nil
	upd = noClass.DeepCopy()
	upd.Spec.StorageClassName = new("fast")
	checkErrors(t, s.ValidateUpdate(ctx, upd, noClass))
	upd.Spec.StorageClassName = new("")
	checkErrors(t, s.ValidateUpdate(ctx, upd, noClass), want{"spec", field.ErrorTypeForbidden})
	checkErrors(t, s.ValidateUpdate(ctx, noClass, pvc), want{"spec", field.ErrorTypeForbidden})
	upd = pvc.DeepCopy()
	upd.Spec.StorageClassName = new("fast")
	checkErrors(t, s.ValidateUpdate(ctx, upd, pvc), want{"spec", field.ErrorTypeForbidden})
	beta := noClass.DeepCopy()
	beta.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "old"}
	upd = beta.DeepCopy()
	upd.Spec.StorageClassName = new("fast")
	checkErrors(t, s.ValidateUpdate(ctx, upd, beta), want{"spec", field.ErrorTypeForbidden})
}

func TestPersistentVolume(t *testing.T) {
	s := PersistentVolumeStrategy{}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}, Spec: corev1.PersistentVolumeSpec{
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/pv-1"}},
	}}
	s.Default(pv)
	s.PrepareForCreate(ctx, pv)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem ||
		pv.Status.Phase != corev1.VolumePending {
		t.Errorf("defaults: %+v", pv)
	}
	checkErrors(t, s.Validate(ctx, pv))
	bad := pv.DeepCopy()
	bad.Spec.Capacity = nil
	bad.Spec.HostPath = nil
	bad.Spec.PersistentVolumeReclaimPolicy = "Keep"
	checkErrors(t, s.Validate(ctx, bad), want{"spec.capacity", field.ErrorTypeRequired}, want{"spec.capacity", field.ErrorTypeNotSupported},
		want{"spec", field.ErrorTypeRequired}, want{"spec.persistentVolumeReclaimPolicy", field.ErrorTypeNotSupported})
	upd := pv.DeepCopy()
	upd.Spec.HostPath.Path = "/data/other"
	checkErrors(t, s.ValidateUpdate(ctx, upd, pv), want{"spec.persistentvolumesource", field.ErrorTypeForbidden})
	upd = pv.DeepCopy()
	upd.Status.Phase = "Lost"
	checkErrors(t, s.ValidateStatusUpdate(ctx, upd, pv), want{"status.phase", field.ErrorTypeNotSupported})
}

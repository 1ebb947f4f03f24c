package apps

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

var (
	validPodManagementPolicies = []appsv1.PodManagementPolicyType{appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement}
	validStatefulSetStrategies = []appsv1.StatefulSetUpdateStrategyType{appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType}
	validPVCRetentionTypes     = []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
)

// StatefulSetStrategy governs statefulsets.
type StatefulSetStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = StatefulSetStrategy{}

// Default applies the apps/v1 defaults: OrderedReady, RollingUpdate with
// partition 0, Retain/Retain claim retention, one replica, 10 revisions,
// and the pod template and claim template defaults.
func (StatefulSetStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.StatefulSet).Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if ru := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil && ru.Partition == nil {
		ru.Partition = new(int32(0))
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp.WhenDeleted == "" {
		rp.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp.WhenScaled == "" {
		rp.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(defaultRevisionHistoryLimit)
	}
	core.DefaultPodTemplateSpec(&spec.Template)
	for i := range spec.VolumeClaimTemplates {
		core.DefaultPersistentVolumeClaim(&spec.VolumeClaimTemplates[i])
	}
}

// PrepareForCreate clears the status.
func (StatefulSetStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{}
}

// Validate validates the statefulset spec. The pod template is validated
// with the claim templates counted as volumes, as its pods will have them.
func (StatefulSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*appsv1.StatefulSet).Spec, field.NewPath("spec")
	var errs field.ErrorList
	switch {
	case spec.PodManagementPolicy == "":
		errs = append(errs, field.Required(p.Child("podManagementPolicy"), ""))
	case !sets.New(validPodManagementPolicies...).Has(spec.PodManagementPolicy):
		errs = append(errs, field.NotSupported(p.Child("podManagementPolicy"), spec.PodManagementPolicy, validPodManagementPolicies))
	}
	errs = append(errs, validateStatefulSetUpdateStrategy(&spec.UpdateStrategy, p.Child("updateStrategy"))...)
	if rp := spec.PersistentVolumeClaimRetentionPolicy; rp != nil {
		rpp := p.Child("persistentVolumeClaimRetentionPolicy")
		for _, f := range []struct {
			name string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", rp.WhenDeleted}, {"whenScaled", rp.WhenScaled}} {
			if !sets.New(validPVCRetentionTypes...).Has(f.v) {
				errs = append(errs, field.NotSupported(rpp.Child(f.name), f.v, validPVCRetentionTypes))
			}
		}
	}
	errs = append(errs, core.ValidateNonnegative(spec.Replicas, p.Child("replicas"))...)
	errs = append(errs, core.ValidateNonnegative(&spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	errs = append(errs, core.ValidateNonnegative(spec.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	if spec.Ordinals != nil {
		errs = append(errs, core.ValidateNonnegative(&spec.Ordinals.Start, p.Child("ordinals", "start"))...)
	}
	errs = append(errs, validateSelector(spec.Selector, &spec.Template, "statefulset", p)...)

	tmpl := spec.Template.DeepCopy()
	names := sets.New[string]()
	for _, v := range tmpl.Spec.Volumes {
		names.Insert(v.Name)
	}
	for i, vct := range spec.VolumeClaimTemplates {
		vp := p.Child("volumeClaimTemplates").Index(i)
		if vct.Name == "" {
			errs = append(errs, field.Required(vp.Child("metadata", "name"), ""))
		}
		errs = append(errs, core.ValidatePersistentVolumeClaimSpec(&vct.Spec, vp.Child("spec"))...)
		if !names.Has(vct.Name) {
			tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: vct.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vct.Name}}})
			names.Insert(vct.Name)
		}
	}
	tp := p.Child("template")
	errs = append(errs, core.ValidatePodTemplateSpec(tmpl, tp)...)
	if rp := tmpl.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), rp, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if tmpl.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in StatefulSet is not Supported"))
	}
	return errs
}

func validateStatefulSetUpdateStrategy(s *appsv1.StatefulSetUpdateStrategy, p *field.Path) field.ErrorList {
	switch s.Type {
	case "":
		return field.ErrorList{field.Required(p, "")}
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Invalid(p.Child("rollingUpdate"), s.RollingUpdate, "only allowed for updateStrategy 'RollingUpdate'")}
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.RollingUpdate; ru != nil {
			rp := p.Child("rollingUpdate")
			errs := core.ValidateNonnegative(ru.Partition, rp.Child("partition"))
			if ru.MaxUnavailable != nil {
				errs = append(errs, core.ValidateIntOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
				if core.IntOrPercentValue(ru.MaxUnavailable) == 0 {
					errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "cannot be 0"))
				}
				errs = append(errs, core.ValidateNotMoreThan100Percent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
			}
			return errs
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("type"), s.Type, validStatefulSetStrategies)}
	}
	return nil
}

// ValidateUpdate allows only replicas, ordinals, template, updateStrategy,
// revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and
// minReadySeconds to change.
func (s StatefulSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	spec, oldSpec := obj.(*appsv1.StatefulSet).Spec.DeepCopy(), &old.(*appsv1.StatefulSet).Spec
	spec.Replicas, spec.Ordinals, spec.Template = oldSpec.Replicas, oldSpec.Ordinals, oldSpec.Template
	spec.UpdateStrategy, spec.RevisionHistoryLimit = oldSpec.UpdateStrategy, oldSpec.RevisionHistoryLimit
	spec.PersistentVolumeClaimRetentionPolicy, spec.MinReadySeconds = oldSpec.PersistentVolumeClaimRetentionPolicy, oldSpec.MinReadySeconds
	// A claim template's apiVersion and kind are not part of it: the
	// stored copy has none (protobuf keeps no TypeMeta of embedded
	// objects), while clients such as helm charts resend them.
	// kube-apiserver compares its internal types, which have none either.
	oldSpec = oldSpec.DeepCopy()
	for _, s := range []*appsv1.StatefulSetSpec{spec, oldSpec} {
		for i := range s.VolumeClaimTemplates {
			s.VolumeClaimTemplates[i].TypeMeta = metav1.TypeMeta{}
		}
	}
	if !equality.Semantic.DeepEqual(spec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return errs
}

// ValidateStatusUpdate checks the replica counts.
func (StatefulSetStrategy) ValidateStatusUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	st, p := &obj.(*appsv1.StatefulSet).Status, field.NewPath("status")
	ready, current := counter{"readyReplicas", st.ReadyReplicas}, counter{"currentReplicas", st.CurrentReplicas}
	updated, available := counter{"updatedReplicas", st.UpdatedReplicas}, counter{"availableReplicas", st.AvailableReplicas}
	errs := validateCounts(p, counter{"replicas", st.Replicas}, ready, current, updated, available)
	errs = append(errs, core.ValidateNonnegative(&st.ObservedGeneration, p.Child("observedGeneration"))...)
	const msg = "cannot be greater than status.replicas"
	for _, c := range []counter{ready, current, updated, available} {
		errs = append(errs, validateAtMost(p, c, st.Replicas, msg)...)
	}
	errs = append(errs, validateAtMost(p, available, st.ReadyReplicas, "cannot be greater than status.readyReplicas")...)
	return append(errs, validateCollisionCount(st.CollisionCount, old.(*appsv1.StatefulSet).Status.CollisionCount, p.Child("collisionCount"))...)
}

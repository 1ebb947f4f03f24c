package apps

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var ctx = context.Background()

// want is an expected validation error: its path and type.
type want struct {
	field string
	typ   field.ErrorType
}

// checkErrors fails unless errs holds exactly the wanted (field, type)
// pairs, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	got := map[want]int{}
	for _, e := range errs {
		got[want{e.Field, e.Type}]++
	}
	for _, w := range wants {
		if got[w] == 0 {
			t.Errorf("missing error %s %q; got %v", w.typ, w.field, errs)
			continue
		}
		got[w]--
	}
	for w, n := range got {
		if n > 0 {
			t.Errorf("unexpected error %s %q; all: %v", w.typ, w.field, errs)
		}
	}
}

var webLabels = map[string]string{"app": "web"}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "frontend"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "nginx:1.27",
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
			Resources:      corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
		}}},
	}
}

func validDeployment() *appsv1.Deployment {
	tmpl := podTemplate()
	tmpl.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: webLabels},
			Template: tmpl,
		},
	}
	DeploymentStrategy{}.Default(d)
	return d
}

func TestDeploymentDefaults(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: podTemplate()}}
	DeploymentStrategy{}.Default(d)
	s := d.Spec
	if *s.Replicas != 1 || s.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		s.Strategy.RollingUpdate.MaxSurge.String() != "25%" || s.Strategy.RollingUpdate.MaxUnavailable.String() != "25%" ||
		*s.RevisionHistoryLimit != 10 || *s.ProgressDeadlineSeconds != 600 {
		t.Errorf("deployment defaults: %+v", s)
	}
	ps := s.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyAlways || *ps.TerminationGracePeriodSeconds != 30 || ps.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent ||
		ps.EnableServiceLinks != nil {
		t.Errorf("template defaults: %+v", ps)
	}
	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	DeploymentStrategy{}.Default(recreate)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Error("Recreate got rollingUpdate")
	}
}

func TestDeploymentValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []want
	}{
		{"valid", func(*appsv1.Deployment) {}, nil},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(-1)) }, []want{{"spec.replicas", field.ErrorTypeInvalid}}},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []want{{"spec.selector", field.ErrorTypeRequired}}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }, []want{{"spec.selector", field.ErrorTypeInvalid}}},
		{"selector mismatch", func(d *appsv1.Deployment) { d.Spec.Selector.MatchLabels = map[string]string{"app": "api"} },
			[]want{{"spec.template.metadata.labels", field.ErrorTypeInvalid}}},
		{"bad template label", func(d *appsv1.Deployment) { d.Spec.Template.Labels["bad key"] = "x" },
			[]want{{"spec.template.labels", field.ErrorTypeInvalid}}},
		{"restartPolicy Never", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]want{{"spec.template.spec.restartPolicy", field.ErrorTypeNotSupported}}},
		{"activeDeadlineSeconds", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ActiveDeadlineSeconds = new(int64(10)) },
			[]want{{"spec.template.spec.activeDeadlineSeconds", field.ErrorTypeInvalid}}},
		{"pod spec rules", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]want{{"spec.template.spec.containers[0].image", field.ErrorTypeRequired}}},
		{"mount of missing volume", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Volumes = nil },
			[]want{{"spec.template.spec.containers[0].volumeMounts[0].name", field.ErrorTypeNotFound}}},
		{"both zero", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("0%"))
		}, []want{{"spec.strategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid}}},
		{"maxUnavailable over 100%", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("150%"))
		},
			[]want{{"spec.strategy.rollingUpdate.maxUnavailable", field.ErrorTypeInvalid}}},
		{"bad maxSurge", func(d *appsv1.Deployment) { d.Spec.Strategy.RollingUpdate.MaxSurge = new(intstr.FromString("lots")) },
			[]want{{"spec.strategy.rollingUpdate.maxSurge", field.ErrorTypeInvalid}}},
		{"Recreate with rollingUpdate", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]want{{"spec.strategy.rollingUpdate", field.ErrorTypeForbidden}}},
		{"bad strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }, []want{{"spec.strategy.type", field.ErrorTypeNotSupported}}},
		{"progress deadline", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			[]want{{"spec.progressDeadlineSeconds", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment()
			tc.mutate(d)
			checkErrors(t, DeploymentStrategy{}.Validate(ctx, d), tc.want...)
		})
	}
}

func TestDeploymentUpdateAndStatus(t *testing.T) {
	s := DeploymentStrategy{}
	old := validDeployment()
	d := old.DeepCopy()
	d.Status.Replicas = 5
	s.PrepareForCreate(ctx, d)
	if d.Status.Replicas != 0 {
		t.Error("status not cleared on create")
	}

	d = old.DeepCopy()
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	d.Spec.Replicas = new(int32(5))
	checkErrors(t, s.ValidateUpdate(ctx, d, old))

	d = old.DeepCopy()
	d.Spec.Selector.MatchLabels = map[string]string{"app": "web", "tier": "frontend"}
	checkErrors(t, s.ValidateUpdate(ctx, d, old), want{"spec.selector", field.ErrorTypeInvalid})

	d = old.DeepCopy()
	d.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 3, UpdatedReplicas: -1}
	checkErrors(t, s.ValidateStatusUpdate(ctx, d, old),
		want{"status.updatedReplicas", field.ErrorTypeInvalid}, want{"status.availableReplicas", field.ErrorTypeInvalid})
}

func TestReplicaSet(t *testing.T) {
	s := ReplicaSetStrategy{}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: webLabels}, Template: podTemplate()}}
	rs.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	s.Default(rs)
	if *rs.Spec.Replicas != 1 {
		t.Errorf("replicas = %d", *rs.Spec.Replicas)
	}
	checkErrors(t, s.Validate(ctx, rs))

	bad := rs.DeepCopy()
	bad.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"frontend"}}}
	checkErrors(t, s.Validate(ctx, bad), want{"spec.template.metadata.labels", field.ErrorTypeInvalid})
	checkErrors(t, s.ValidateUpdate(ctx, bad, rs), want{"spec.template.metadata.labels", field.ErrorTypeInvalid}, want{"spec.selector", field.ErrorTypeInvalid})

	st := rs.DeepCopy()
	st.Status = appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}
	checkErrors(t, s.ValidateStatusUpdate(ctx, st, rs), want{"status.fullyLabeledReplicas", field.ErrorTypeInvalid})

	empty := s.SelectableFields(&appsv1.ReplicaSet{})
	if got := s.SelectableFields(st); len(got) != 1 || len(empty) != 1 || got["status.replicas"] != "2" {
		t.Errorf("fields = %v", got)
	}
}

func validStatefulSet() *appsv1.StatefulSet {
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db",
			Replicas:    new(int32(3)),
			Selector:    &metav1.LabelSelector{MatchLabels: webLabels},
			Template:    podTemplate(),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
				},
			}},
		},
	}
	StatefulSetStrategy{}.Default(sts)
	return sts
}

func TestStatefulSetDefaults(t *testing.T) {
	s := validStatefulSet().Spec
	if s.PodManagementPolicy != appsv1.OrderedReadyPodManagement || s.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType ||
		*s.UpdateStrategy.RollingUpdate.Partition != 0 || s.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType ||
		s.PersistentVolumeClaimRetentionPolicy.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || *s.RevisionHistoryLimit != 10 {
		t.Errorf("statefulset defaults: %+v", s)
	}
	if *s.VolumeClaimTemplates[0].Spec.VolumeMode != corev1.PersistentVolumeFilesystem || s.VolumeClaimTemplates[0].Status.Phase != corev1.ClaimPending {
		t.Errorf("claim template defaults: %+v", s.VolumeClaimTemplates[0])
	}
}

func TestStatefulSetValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.StatefulSet)
		want   []want
	}{
		{"valid (mount of a claim template)", func(*appsv1.StatefulSet) {}, nil},
		{"bad podManagementPolicy", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" },
			[]want{{"spec.podManagementPolicy", field.ErrorTypeNotSupported}}},
		{"negative partition", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(-1)) },
			[]want{{"spec.updateStrategy.rollingUpdate.partition", field.ErrorTypeInvalid}}},
		{"OnDelete with rollingUpdate", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType },
			[]want{{"spec.updateStrategy.rollingUpdate", field.ErrorTypeInvalid}}},
		{"bad retention", func(s *appsv1.StatefulSet) { s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = "Keep" },
			[]want{{"spec.persistentVolumeClaimRetentionPolicy.whenScaled", field.ErrorTypeNotSupported}}},
		{"claim without storage", func(s *appsv1.StatefulSet) { s.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests = nil },
			[]want{{"spec.volumeClaimTemplates[0].spec.resources[storage]", field.ErrorTypeRequired}}},
		{"selector mismatch", func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = map[string]string{"app": "db"} },
			[]want{{"spec.template.metadata.labels", field.ErrorTypeInvalid}}},
		{"activeDeadlineSeconds", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.ActiveDeadlineSeconds = new(int64(5)) },
			[]want{{"spec.template.spec.activeDeadlineSeconds", field.ErrorTypeForbidden}}},
		{"restartPolicy", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]want{{"spec.template.spec.restartPolicy", field.ErrorTypeNotSupported}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := validStatefulSet()
			tc.mutate(sts)
			checkErrors(t, StatefulSetStrategy{}.Validate(ctx, sts), tc.want...)
		})
	}
}

func TestStatefulSetUpdate(t *testing.T) {
	s := StatefulSetStrategy{}
	old := validStatefulSet()
	sts := old.DeepCopy()
	sts.Spec.Replicas = new(int32(5))
	sts.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	sts.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(2))
	checkErrors(t, s.ValidateUpdate(ctx, sts, old))

	sts = old.DeepCopy()
	sts.Spec.ServiceName = "db-headless"
	checkErrors(t, s.ValidateUpdate(ctx, sts, old), want{"spec", field.ErrorTypeForbidden})

	// Claim templates resent with their apiVersion and kind are unchanged.
	sts = old.DeepCopy()
	for i := range sts.Spec.VolumeClaimTemplates {
		sts.Spec.VolumeClaimTemplates[i].APIVersion, sts.Spec.VolumeClaimTemplates[i].Kind = "v1", "PersistentVolumeClaim"
	}
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		t.Fatal("validStatefulSet has no claim templates")
	}
	checkErrors(t, s.ValidateUpdate(ctx, sts, old))
	sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("99Gi")
	checkErrors(t, s.ValidateUpdate(ctx, sts, old), want{"spec", field.ErrorTypeForbidden})

	sts = old.DeepCopy()
	sts.Status = appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 4, AvailableReplicas: 4}
	checkErrors(t, s.ValidateStatusUpdate(ctx, sts, old),
		want{"status.readyReplicas", field.ErrorTypeInvalid}, want{"status.availableReplicas", field.ErrorTypeInvalid})
}

func TestDaemonSet(t *testing.T) {
	s := DaemonSetStrategy{}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: webLabels}, Template: podTemplate()}}
	ds.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/agent"}}}}
	ds.Spec.Template.Spec.HostNetwork = true
	s.Default(ds)
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru.MaxUnavailable.IntValue() != 1 || ru.MaxSurge.IntValue() != 0 ||
		*ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("daemonset defaults: %+v", ds.Spec)
	}
	// With hostNetwork, a template may leave hostPort unset.
	checkErrors(t, s.Validate(ctx, ds))

	for _, tc := range []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   []want
	}{
		{"both set", func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(1)) },
			[]want{{"spec.updateStrategy.rollingUpdate.maxSurge", field.ErrorTypeInvalid}}},
		{"both zero", func(d *appsv1.DaemonSet) {
			d.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(0))
		},
			[]want{{"spec.updateStrategy.rollingUpdate.maxUnavailable", field.ErrorTypeRequired}}},
		{"bad type", func(d *appsv1.DaemonSet) { d.Spec.UpdateStrategy.Type = "Surge" }, []want{{"spec.updateStrategy.type", field.ErrorTypeNotSupported}}},
		{"empty selector", func(d *appsv1.DaemonSet) { d.Spec.Selector = &metav1.LabelSelector{} }, []want{{"spec.selector", field.ErrorTypeInvalid}}},
		{"activeDeadlineSeconds", func(d *appsv1.DaemonSet) { d.Spec.Template.Spec.ActiveDeadlineSeconds = new(int64(1)) },
			[]want{{"spec.template.spec.activeDeadlineSeconds", field.ErrorTypeInvalid}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := ds.DeepCopy()
			tc.mutate(d)
			checkErrors(t, s.Validate(ctx, d), tc.want...)
		})
	}

	upd := ds.DeepCopy()
	upd.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "frontend"}}
	checkErrors(t, s.ValidateUpdate(ctx, upd, ds), want{"spec.selector", field.ErrorTypeInvalid})

	st := ds.DeepCopy()
	st.Status.NumberReady, st.Status.CollisionCount = -1, new(int32(0))
	ds.Status.CollisionCount = new(int32(1))
	checkErrors(t, s.ValidateStatusUpdate(ctx, st, ds), want{"status.numberReady", field.ErrorTypeInvalid}, want{"status.collisionCount", field.ErrorTypeInvalid})
}

func TestControllerRevision(t *testing.T) {
	s := ControllerRevisionStrategy{}
	cr := &appsv1.ControllerRevision{Revision: 1, Data: runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}}
	checkErrors(t, s.Validate(ctx, cr))
	checkErrors(t, s.Validate(ctx, &appsv1.ControllerRevision{Revision: -1}),
		want{"data", field.ErrorTypeRequired}, want{"revision", field.ErrorTypeInvalid})
	upd := cr.DeepCopy()
	upd.Revision = 2
	checkErrors(t, s.ValidateUpdate(ctx, upd, cr))
	upd.Data.Raw = []byte(`{}`)
	checkErrors(t, s.ValidateUpdate(ctx, upd, cr), want{"data", field.ErrorTypeInvalid})
}

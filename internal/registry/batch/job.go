package batch

import (
	"context"
	"fmt"
	"math"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// Limits upstream puts on Indexed jobs, and the labels it used before the
// batch.kubernetes.io/ ones.
const (
	legacyJobNameLabel          = "job-name"
	legacyControllerUIDLabel    = "controller-uid"
	maxParallelismForIndexedJob = 100000
	maxCompletionsForIndexedJob = 100000
)

var (
	validCompletionModes     = []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}
	validReplacementPolicies = []batchv1.PodReplacementPolicy{batchv1.TerminatingOrFailed, batchv1.Failed}
	validFailurePolicyAction = []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionFailIndex,
		batchv1.PodFailurePolicyActionIgnore, batchv1.PodFailurePolicyActionCount}
)

// JobStrategy governs jobs.
type JobStrategy struct{ registry.DefaultStrategy }

var _ registry.StatusStrategy = JobStrategy{}

// Default applies the batch/v1 defaults: parallelism 1 (and completions 1
// when both are unset), backoffLimit 6, NonIndexed, not suspended, not a
// manual selector, the pod replacement policy, labels from the template,
// and the pod template defaults.
func (JobStrategy) Default(obj runtime.Object) {
	job := obj.(*batchv1.Job)
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = new(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = new(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = new(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = new(int32(6))
		}
	}
	if len(job.Labels) == 0 && spec.Template.Labels != nil {
		// The map is shared, as upstream's is: a job created without labels
		// also gets the labels PrepareForCreate adds to its pods.
		job.Labels = spec.Template.Labels
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = new(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = new(false)
	}
	if pfp := spec.PodFailurePolicy; pfp != nil {
		for _, rule := range pfp.Rules {
			for i := range rule.OnPodConditions {
				if rule.OnPodConditions[i].Status == "" {
					rule.OnPodConditions[i].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = new(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = new(batchv1.TerminatingOrFailed)
		}
	}
	core.DefaultPodTemplateSpec(&spec.Template)
}

// PrepareForCreate generates the selector and pod labels (unless
// manualSelector is set) and clears the status. The job's name and uid must
// already be set.
func (JobStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	job := obj.(*batchv1.Job)
	if job.Spec.ManualSelector == nil || !*job.Spec.ManualSelector {
		generateSelector(job)
	}
	job.Status = batchv1.JobStatus{}
}

// generateSelector labels the job's pods with its name and uid and selects
// them by uid; labels a client set are kept, and rejected by validation if
// they conflict.
func generateSelector(job *batchv1.Job) {
	tl := job.Spec.Template.Labels
	if tl == nil {
		tl = map[string]string{}
		job.Spec.Template.Labels = tl
	}
	for key, value := range map[string]string{
		legacyJobNameLabel:         job.Name,
		batchv1.JobNameLabel:       job.Name,
		legacyControllerUIDLabel:   string(job.UID),
		batchv1.ControllerUidLabel: string(job.UID),
	} {
		if _, ok := tl[key]; !ok {
			tl[key] = value
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
}

// Validate validates a job: its generated selector and its spec.
func (JobStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	job := obj.(*batchv1.Job)
	return append(validateGeneratedSelector(job, true), validateJobSpecWithSelector(&job.Spec, field.NewPath("spec"))...)
}

// validateGeneratedSelector checks that, without a manual selector, the
// pods carry the generated labels and the selector is the generated one.
// withBatchLabels also requires the batch.kubernetes.io/ labels.
func validateGeneratedSelector(job *batchv1.Job, withBatchLabels bool) field.ErrorList {
	if (job.Spec.ManualSelector != nil && *job.Spec.ManualSelector) || job.Spec.Selector == nil {
		return nil
	}
	var errs field.ErrorList
	if job.UID == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "uid"), ""))
	}
	uid, name := string(job.UID), job.Name
	required := map[string]string{legacyControllerUIDLabel: uid, legacyJobNameLabel: name}
	selected := map[string]string{legacyControllerUIDLabel: uid, legacyJobNameLabel: name}
	if withBatchLabels {
		required[batchv1.ControllerUidLabel], required[batchv1.JobNameLabel] = uid, name
		selected = map[string]string{batchv1.ControllerUidLabel: uid, batchv1.JobNameLabel: name}
	}
	meta := field.NewPath("spec", "template", "metadata")
	for _, key := range sets.List(sets.KeySet(required)) {
		p := meta.Child("labels").Key(key)
		switch v, ok := job.Spec.Template.Labels[key]; {
		case !ok:
			errs = append(errs, field.Required(p, required[key]))
		case v != required[key]:
			errs = append(errs, field.Invalid(p, job.Spec.Template.Labels, fmt.Sprintf("must be '%s'", required[key])))
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(labels.Set(selected)) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateJobSpecWithSelector validates a job spec that must carry a
// selector matching its pod template.
func validateJobSpecWithSelector(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	errs := validateJobSpec(spec, p)
	if spec.Selector == nil {
		return append(errs, field.Required(p.Child("selector"), ""))
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateJobSpec validates a job spec apart from its selector; a CronJob's
// job template uses it too.
func validateJobSpec(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{{"parallelism", spec.Parallelism}, {"completions", spec.Completions}, {"backoffLimit", spec.BackoffLimit},
		{"ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished}, {"backoffLimitPerIndex", spec.BackoffLimitPerIndex}, {"maxFailedIndexes", spec.MaxFailedIndexes}} {
		errs = append(errs, core.ValidateNonnegative(f.v, p.Child(f.name))...)
	}
	errs = append(errs, core.ValidateNonnegative(spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)

	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if cm := spec.CompletionMode; cm != nil && !sets.New(validCompletionModes...).Has(*cm) {
		errs = append(errs, field.NotSupported(p.Child("completionMode"), *cm, validCompletionModes))
	}
	if indexed {
		if spec.Completions == nil {
			errs = append(errs, field.Required(p.Child("completions"), "when completion mode is Indexed"))
		} else if *spec.Completions > maxCompletionsForIndexedJob {
			errs = append(errs, field.Invalid(p.Child("completions"), *spec.Completions, fmt.Sprintf("must be less than or equal to %d when completion mode is Indexed", maxCompletionsForIndexedJob)))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
			errs = append(errs, field.Invalid(p.Child("parallelism"), *spec.Parallelism, fmt.Sprintf("must be less than or equal to %d when completion mode is Indexed", maxParallelismForIndexedJob)))
		}
	}
	if spec.BackoffLimitPerIndex != nil && !indexed {
		errs = append(errs, field.Invalid(p.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
	}
	if spec.MaxFailedIndexes != nil && spec.BackoffLimitPerIndex == nil {
		errs = append(errs, field.Required(p.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
	}
	if rp := spec.PodReplacementPolicy; rp != nil {
		switch {
		case spec.PodFailurePolicy != nil && *rp != batchv1.Failed:
			errs = append(errs, field.NotSupported(p.Child("podReplacementPolicy"), *rp, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		case !sets.New(validReplacementPolicies...).Has(*rp):
			errs = append(errs, field.NotSupported(p.Child("podReplacementPolicy"), *rp, validReplacementPolicies))
		}
	}
	errs = append(errs, validatePodFailurePolicy(spec.PodFailurePolicy, p.Child("podFailurePolicy"))...)

	errs = append(errs, core.ValidatePodTemplateSpec(&spec.Template, p.Child("template"))...)
	rpPath := p.Child("template", "spec", "restartPolicy")
	switch rp := spec.Template.Spec.RestartPolicy; {
	case rp == corev1.RestartPolicyAlways || rp == "":
		errs = append(errs, field.Required(rpPath, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(rpPath, rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case rp == corev1.RestartPolicyOnFailure && spec.PodFailurePolicy != nil:
		errs = append(errs, field.Invalid(rpPath, rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

func validatePodFailurePolicy(pfp *batchv1.PodFailurePolicy, p *field.Path) field.ErrorList {
	if pfp == nil {
		return nil
	}
	var errs field.ErrorList
	for i, rule := range pfp.Rules {
		rp := p.Child("rules").Index(i)
		if !sets.New(validFailurePolicyAction...).Has(rule.Action) {
			errs = append(errs, field.NotSupported(rp.Child("action"), rule.Action, validFailurePolicyAction))
		}
		switch {
		case rule.OnExitCodes != nil && rule.OnPodConditions != nil:
			errs = append(errs, field.Invalid(rp, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		case rule.OnExitCodes == nil && rule.OnPodConditions == nil:
			errs = append(errs, field.Invalid(rp, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
		if ec := rule.OnExitCodes; ec != nil {
			ops := []batchv1.PodFailurePolicyOnExitCodesOperator{batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn}
			if !sets.New(ops...).Has(ec.Operator) {
				errs = append(errs, field.NotSupported(rp.Child("onExitCodes", "operator"), ec.Operator, ops))
			}
			if len(ec.Values) == 0 {
				errs = append(errs, field.Invalid(rp.Child("onExitCodes", "values"), ec.Values, "at least one value is required"))
			}
		}
	}
	return errs
}

// ValidateUpdate keeps the selector, completion mode and failure and
// replacement policies immutable; completions may change only for Indexed
// jobs, together with parallelism; the pod template may change only in
// its scheduling directives, and only while the job is suspended and has
// never started.
func (s JobStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	job, oldJob := obj.(*batchv1.Job), old.(*batchv1.Job)
	_, hadName := oldJob.Spec.Template.Labels[batchv1.JobNameLabel]
	_, hadUID := oldJob.Spec.Template.Labels[batchv1.ControllerUidLabel]
	errs := append(validateGeneratedSelector(job, hadName && hadUID), validateJobSpecWithSelector(&job.Spec, field.NewPath("spec"))...)

	spec, oldSpec, p := &job.Spec, &oldJob.Spec, field.NewPath("spec")
	for _, f := range []struct {
		name     string
		new, old any
	}{{"selector", spec.Selector, oldSpec.Selector}, {"completionMode", spec.CompletionMode, oldSpec.CompletionMode},
		{"podFailurePolicy", spec.PodFailurePolicy, oldSpec.PodFailurePolicy}, {"backoffLimitPerIndex", spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex},
		{"managedBy", spec.ManagedBy, oldSpec.ManagedBy}, {"successPolicy", spec.SuccessPolicy, oldSpec.SuccessPolicy},
		{"podReplacementPolicy", spec.PodReplacementPolicy, oldSpec.PodReplacementPolicy}} {
		errs = append(errs, core.ValidateImmutable(f.new, f.old, p.Child(f.name))...)
	}

	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	switch {
	case !indexed:
		errs = append(errs, core.ValidateImmutable(spec.Completions, oldSpec.Completions, p.Child("completions"))...)
	case spec.Completions != nil && spec.Parallelism != nil && !equalPtr(spec.Completions, oldSpec.Completions) && *spec.Completions != *spec.Parallelism:
		errs = append(errs, field.Invalid(p.Child("completions"), *spec.Completions, "can only be modified in tandem with spec.parallelism"))
	}

	oldTemplate := oldSpec.Template.DeepCopy()
	if oldSpec.Suspend != nil && *oldSpec.Suspend && oldJob.Status.StartTime == nil {
		oldTemplate.Labels, oldTemplate.Annotations = spec.Template.Labels, spec.Template.Annotations
		oldTemplate.Spec.NodeSelector, oldTemplate.Spec.Tolerations = spec.Template.Spec.NodeSelector, spec.Template.Spec.Tolerations
		oldTemplate.Spec.SchedulingGates = spec.Template.Spec.SchedulingGates
		if spec.Template.Spec.Affinity != nil || oldTemplate.Spec.Affinity != nil {
			a := corev1.Affinity{}
			if oldTemplate.Spec.Affinity != nil {
				a = *oldTemplate.Spec.Affinity
			}
			if spec.Template.Spec.Affinity != nil {
				a.NodeAffinity = spec.Template.Spec.Affinity.NodeAffinity
			} else {
				a.NodeAffinity = nil
			}
			oldTemplate.Spec.Affinity = &a
			if a == (corev1.Affinity{}) {
				oldTemplate.Spec.Affinity = nil
			}
		}
	}
	return append(errs, core.ValidateImmutable(&spec.Template, oldTemplate, p.Child("template"))...)
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// ValidateStatusUpdate checks the pod counts.
func (JobStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	st, p := &obj.(*batchv1.Job).Status, field.NewPath("status")
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{{"active", &st.Active}, {"succeeded", &st.Succeeded}, {"failed", &st.Failed}, {"ready", st.Ready}, {"terminating", st.Terminating}} {
		errs = append(errs, core.ValidateNonnegative(f.v, p.Child(f.name))...)
	}
	return errs
}

// SelectableFields returns status.successful.
func (JobStrategy) SelectableFields(obj runtime.Object) fields.Set {
	return fields.Set{"status.successful": strconv.Itoa(int(obj.(*batchv1.Job).Status.Succeeded))}
}

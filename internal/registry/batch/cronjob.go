package batch

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zones must resolve even on hosts without tzdata

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/havre/havre/internal/registry"
	"github.com/havre/havre/internal/registry/core"
)

// maxCronJobNameLength leaves room for the 11-character suffix the CronJob
// controller appends to name its jobs.
const maxCronJobNameLength = 52

var (
	validConcurrencyPolicies = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}
	validTimeZoneCharacters  = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)
)

// CronJobStrategy governs cronjobs.
type CronJobStrategy struct{ registry.DefaultStrategy }

// Default applies the batch/v1 defaults: concurrencyPolicy Allow, not
// suspended, 3 successful and 1 failed jobs kept, and the pod template
// defaults.
func (CronJobStrategy) Default(obj runtime.Object) {
	spec := &obj.(*batchv1.CronJob).Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = new(int32(3))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = new(int32(1))
	}
	core.DefaultPodTemplateSpec(&spec.JobTemplate.Spec.Template)
}

// PrepareForCreate clears the status.
func (CronJobStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*batchv1.CronJob).Status = batchv1.CronJobStatus{}
}

// Validate validates a new cronjob.
func (CronJobStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	cj := obj.(*batchv1.CronJob)
	errs := validateCronJobSpec(&cj.Spec, nil, field.NewPath("spec"))
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	return errs
}

// ValidateUpdate validates the new spec; a TZ= schedule or an invalid time
// zone already stored is tolerated.
func (CronJobStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validateCronJobSpec(&obj.(*batchv1.CronJob).Spec, &old.(*batchv1.CronJob).Spec, field.NewPath("spec"))
}

func validateCronJobSpec(spec, oldSpec *batchv1.CronJobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Schedule == "" {
		errs = append(errs, field.Required(p.Child("schedule"), ""))
	} else {
		allowTZ := oldSpec != nil && strings.Contains(oldSpec.Schedule, "TZ")
		errs = append(errs, validateSchedule(spec.Schedule, allowTZ, spec.TimeZone, p.Child("schedule"))...)
	}
	if oldSpec == nil || !equalPtr(spec.TimeZone, oldSpec.TimeZone) {
		errs = append(errs, validateTimeZone(spec.TimeZone, p.Child("timeZone"))...)
	}
	errs = append(errs, core.ValidateNonnegative(spec.StartingDeadlineSeconds, p.Child("startingDeadlineSeconds"))...)
	switch cp := spec.ConcurrencyPolicy; {
	case cp == "":
		errs = append(errs, field.Required(p.Child("concurrencyPolicy"), ""))
	case !sets.New(validConcurrencyPolicies...).Has(cp):
		errs = append(errs, field.NotSupported(p.Child("concurrencyPolicy"), cp, validConcurrencyPolicies))
	}
	errs = append(errs, core.ValidateNonnegative(spec.SuccessfulJobsHistoryLimit, p.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, core.ValidateNonnegative(spec.FailedJobsHistoryLimit, p.Child("failedJobsHistoryLimit"))...)

	jp := p.Child("jobTemplate", "spec")
	errs = append(errs, validateJobSpec(&spec.JobTemplate.Spec, jp)...)
	if sel := spec.JobTemplate.Spec.Selector; sel != nil {
		errs = append(errs, field.Invalid(jp.Child("selector"), sel, "`selector` will be auto-generated"))
	}
	if ms := spec.JobTemplate.Spec.ManualSelector; ms != nil && *ms {
		errs = append(errs, field.NotSupported(jp.Child("manualSelector"), *ms, []string{"nil", "false"}))
	}
	return errs
}

// validateSchedule parses a standard five-field schedule (or a descriptor
// such as @hourly); TZ= prefixes belong in spec.timeZone.
func validateSchedule(schedule string, allowTZ bool, timeZone *string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := cron.ParseStandard(schedule); err != nil {
		errs = append(errs, field.Invalid(p, schedule, err.Error()))
	}
	switch {
	case allowTZ && strings.Contains(schedule, "TZ") && timeZone != nil:
		errs = append(errs, field.Invalid(p, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
	case !allowTZ && strings.Contains(schedule, "TZ"):
		errs = append(errs, field.Invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return errs
}

// validateTimeZone checks an IANA time zone name.
func validateTimeZone(tz *string, p *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(p, *tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(p, *tz, err.Error())}
	}
	return nil
}

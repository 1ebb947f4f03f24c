package job

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// jobKind is the kind of the owner references the controller sets.
var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// removeFinalizerPatch is the strategic merge patch removing the tracking
// finalizer from a pod, or nil when it has none.
func removeFinalizerPatch(p *corev1.Pod) []byte {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
	}})
	return b
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// isActive is upstream's FilterActivePods criterion: neither finished nor
// being deleted.
func isActive(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp == nil }

func isTerminating(p *corev1.Pod) bool { return !isTerminal(p) && p.DeletionTimestamp != nil }

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readySince(p *corev1.Pod) metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime
		}
	}
	return metav1.Time{}
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n = max(n, cs.RestartCount)
	}
	return n
}

var phaseRank = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// sortForRemoval orders pods the way upstream's ActivePods does, the
// cheapest to lose first: unscheduled before scheduled, pending before
// running, not ready before ready, ready for less time first, more
// restarts first, newer first.
func sortForRemoval(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if ra, rb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; ra != rb {
			return ra < rb
		}
		if isReady(a) != isReady(b) {
			return !isReady(a)
		}
		if isReady(a) {
			if ta, tb := readySince(a), readySince(b); !ta.Equal(&tb) {
				return tb.Before(&ta)
			}
		}
		if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
			return ra > rb
		}
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	})
}

// podsPrefix is the generateName of a job's pods: "<job>-" when valid.
func podsPrefix(name string) string {
	prefix := name + "-"
	if len(apivalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		return name
	}
	return prefix
}

// createPod creates one pod of job from template, recording an Event.
func (c *Controller) createPod(ctx context.Context, job *batchv1.Job, template *corev1.PodTemplateSpec, generateName string) error {
	if generateName == "" {
		generateName = podsPrefix(job.Name)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName,
			Labels:          maps.Clone(template.Labels),
			Annotations:     maps.Clone(template.Annotations),
			Finalizers:      slices.Clone(template.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if len(pod.Labels) == 0 {
		return fmt.Errorf("unable to create pods, no labels")
	}
	created, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// deletePod deletes a pod of job, recording an Event. A pod already gone
// yields the NotFound error and no Event.
func (c *Controller) deletePod(ctx context.Context, job *batchv1.Job, name string) error {
	err := c.client.CoreV1().Pods(job.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return err
	case err != nil:
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %w", err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", name)
	return nil
}

func (c *Controller) patchPod(ctx context.Context, namespace, name string, patch []byte) error {
	_, err := c.client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// podsForJob returns the pods the job owns, adopting matching orphans (with
// the tracking finalizer) and releasing owned pods its selector no longer
// matches, as upstream's PodControllerRefManager does. The pods are the
// informer's, except adopted ones.
func (c *Controller) podsForJob(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("couldn't convert Job selector: %w", err)
	}
	all, err := c.podLister.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var (
		owned    []*corev1.Pod
		errs     []error
		adoptErr error
		checked  bool
	)
	canAdopt := func() error {
		if !checked {
			checked = true
			adoptErr = c.recheckJob(ctx, job)
		}
		return adoptErr
	}
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		switch {
		case ref != nil && ref.UID != job.UID:
			continue
		case ref != nil && selector.Matches(labels.Set(p.Labels)):
			owned = append(owned, p)
		case ref != nil:
			if job.DeletionTimestamp != nil {
				continue
			}
			if err := c.patchPod(ctx, p.Namespace, p.Name, releasePatch(job, p)); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		case job.DeletionTimestamp == nil && p.DeletionTimestamp == nil && selector.Matches(labels.Set(p.Labels)):
			if err := canAdopt(); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := c.patchPod(ctx, p.Namespace, p.Name, adoptPatch(job, p)); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			adopted := p.DeepCopy()
			adopted.OwnerReferences = append(adopted.OwnerReferences, *metav1.NewControllerRef(job, jobKind))
			if !hasTrackingFinalizer(adopted) {
				adopted.Finalizers = append(adopted.Finalizers, batchv1.JobTrackingFinalizer)
			}
			owned = append(owned, adopted)
		}
	}
	return owned, utilerrors.NewAggregate(errs)
}

// recheckJob reads the job from the API server before an adoption: the
// cached one may have been deleted or replaced.
func (c *Controller) recheckJob(ctx context.Context, job *batchv1.Job) error {
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != job.UID {
		return fmt.Errorf("original Job %v/%v is gone: got uid %v, wanted %v", job.Namespace, job.Name, fresh.UID, job.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%v/%v has just been deleted at %v", job.Namespace, job.Name, fresh.DeletionTimestamp)
	}
	return nil
}

func adoptPatch(job *batchv1.Job, p *corev1.Pod) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		"uid":             p.UID,
		"finalizers":      []string{batchv1.JobTrackingFinalizer},
	}})
	return b
}

func releasePatch(job *batchv1.Job, p *corev1.Pod) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences":                     []map[string]any{{"$patch": "delete", "uid": job.UID}},
		"uid":                                 p.UID,
		"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
	}})
	return b
}

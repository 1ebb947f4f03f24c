package job

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// completionIndexEnvName is the variable Indexed jobs' containers get.
	completionIndexEnvName = "JOB_COMPLETION_INDEX"
	unknownCompletionIndex = -1
	// maxGeneratedNameLength is what a generateName prefix may use of a
	// name: the API server appends five random characters.
	maxGeneratedNameLength = 63 - 5
)

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// interval is a closed range of completion indexes.
type interval struct{ first, last int }

// intervals are sorted, disjoint and non-adjacent ranges of indexes: the
// form of status.completedIndexes ("1,3-5,7").
type intervals []interval

// parseIntervals reads a completedIndexes string, ignoring corrupt parts
// and indexes at or above completions.
func parseIntervals(s string, completions int) intervals {
	if s == "" {
		return nil
	}
	var out intervals
	for _, part := range strings.Split(s, ",") {
		bounds := strings.Split(part, "-")
		first, err := strconv.Atoi(bounds[0])
		if err != nil {
			continue
		}
		if first >= completions {
			break
		}
		last := first
		if len(bounds) > 1 {
			if last, err = strconv.Atoi(bounds[1]); err != nil {
				continue
			}
			last = min(last, completions-1)
		}
		if n := len(out); n > 0 && out[n-1].last == first-1 {
			out[n-1].last = last
		} else {
			out = append(out, interval{first, last})
		}
	}
	return out
}

// with returns the intervals merged with indexes, which are sorted.
func (iv intervals) with(indexes []int) intervals {
	var out intervals
	add := func(n interval) {
		if k := len(out); k == 0 || n.first > out[k-1].last+1 {
			out = append(out, n)
		} else if out[k-1].last < n.last {
			out[k-1].last = n.last
		}
	}
	i, j := 0, 0
	for i < len(iv) && j < len(indexes) {
		if iv[i].first < indexes[j] {
			add(iv[i])
			i++
		} else {
			add(interval{indexes[j], indexes[j]})
			j++
		}
	}
	for ; i < len(iv); i++ {
		add(iv[i])
	}
	for ; j < len(indexes); j++ {
		add(interval{indexes[j], indexes[j]})
	}
	return out
}

// total counts the indexes.
func (iv intervals) total() int {
	n := 0
	for _, r := range iv {
		n += r.last - r.first + 1
	}
	return n
}

// has reports whether ix is in one of the intervals.
func (iv intervals) has(ix int) bool {
	k := sort.Search(len(iv), func(i int) bool { return iv[i].last >= ix })
	return k < len(iv) && iv[k].first <= ix
}

// String formats the intervals as upstream does: two adjacent indexes are
// listed ("3,4"), longer runs are ranges ("3-5").
func (iv intervals) String() string {
	var b strings.Builder
	for _, r := range iv {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.first))
		switch {
		case r.last == r.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(r.last))
		case r.last > r.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.last))
		}
	}
	return b.String()
}

// completionIndex reads a pod's completion index annotation.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return unknownCompletionIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return unknownCompletionIndex
	}
	return i
}

// validIndex reports whether a pod of an Indexed job has an index below
// completions.
func validIndex(job *batchv1.Job, pod *corev1.Pod) bool {
	ix := completionIndex(pod)
	return ix != unknownCompletionIndex && ix < int(*job.Spec.Completions)
}

// succeededIndexes returns the indexes already in the status and those
// with them plus the indexes of succeeded pods not counted yet.
func succeededIndexes(job *batchv1.Job, pods []*corev1.Pod) (prev, now intervals) {
	prev = parseIntervals(job.Status.CompletedIndexes, int(*job.Spec.Completions))
	fresh := sets.New[int]()
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded && validIndex(job, p) && hasTrackingFinalizer(p) {
			fresh.Insert(completionIndex(p))
		}
	}
	return prev, prev.with(sets.List(fresh))
}

// firstPendingIndexes returns up to count indexes below completions that
// neither succeeded nor have an active pod.
func firstPendingIndexes(active []*corev1.Pod, succeeded intervals, count, completions int) []int {
	if count == 0 {
		return nil
	}
	running := sets.New[int]()
	for _, p := range active {
		if ix := completionIndex(p); ix != unknownCompletionIndex {
			running.Insert(ix)
		}
	}
	taken := succeeded.with(sets.List(running))
	out := make([]int, 0, count)
	candidate := 0
	for _, r := range taken {
		for ; candidate < completions && len(out) < count && candidate < r.first; candidate++ {
			out = append(out, candidate)
		}
		candidate = max(candidate, r.last+1)
	}
	for ; candidate < completions && len(out) < count; candidate++ {
		out = append(out, candidate)
	}
	return out
}

// duplicateIndexPods splits the active pods of an Indexed job into those to
// remove (no or an out-of-range index, or all but the best pod of an index
// several pods run) and those to keep.
func duplicateIndexPods(pods []*corev1.Pod, completions int) (rm, keep []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	for _, p := range pods {
		ix := completionIndex(p)
		if ix == unknownCompletionIndex || ix >= completions {
			rm = append(rm, p)
			continue
		}
		byIndex[ix] = append(byIndex[ix], p)
	}
	for _, ix := range sets.List(sets.KeySet(byIndex)) {
		same := byIndex[ix]
		sortForRemoval(same)
		rm = append(rm, same[:len(same)-1]...)
		keep = append(keep, same[len(same)-1])
	}
	return rm, keep
}

// indexedGenerateName is the generateName of an Indexed job's pod:
// "<job>-<index>-", with the job name cut to fit.
func indexedGenerateName(jobName string, index int) string {
	suffix := "-" + strconv.Itoa(index) + "-"
	prefix := jobName + suffix
	if len(prefix) > maxGeneratedNameLength {
		prefix = prefix[:maxGeneratedNameLength-len(suffix)] + suffix
	}
	return prefix
}

// addCompletionIndexEnv gives every container JOB_COMPLETION_INDEX from the
// downward API (the pod's completion index label), unless it has one.
func addCompletionIndexEnv(template *corev1.PodTemplateSpec) {
	add := func(c *corev1.Container) {
		for _, e := range c.Env {
			if e.Name == completionIndexEnvName {
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: completionIndexEnvName, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation)},
		}})
	}
	for i := range template.Spec.InitContainers {
		add(&template.Spec.InitContainers[i])
	}
	for i := range template.Spec.Containers {
		add(&template.Spec.Containers[i])
	}
}

// setCompletionIndex gives a pod template its index: annotation, label,
// hostname "<job>-<index>".
func setCompletionIndex(template *corev1.PodTemplateSpec, jobName string, index int) {
	if template.Annotations == nil {
		template.Annotations = map[string]string{}
	}
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Annotations[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(index)
	template.Labels[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(index)
	template.Spec.Hostname = fmt.Sprintf("%s-%d", jobName, index)
}

package deployment

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
)

// createdBefore orders by creation time, then by name.
func createdBefore(a, b *appsv1.ReplicaSet) bool {
	if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.Name < b.Name
	}
	return a.CreationTimestamp.Before(&b.CreationTimestamp)
}

func sortByCreation(sets []*appsv1.ReplicaSet) {
	sort.Slice(sets, func(i, j int) bool { return createdBefore(sets[i], sets[j]) })
}

func sortByCreationNewestFirst(sets []*appsv1.ReplicaSet) {
	sort.Slice(sets, func(i, j int) bool { return createdBefore(sets[j], sets[i]) })
}

// sortBySizeNewer puts larger first, and newer first among equals (where
// scale-ups go first).
func sortBySizeNewer(sets []*appsv1.ReplicaSet) {
	sort.Slice(sets, func(i, j int) bool {
		if *sets[i].Spec.Replicas == *sets[j].Spec.Replicas {
			return createdBefore(sets[j], sets[i])
		}
		return *sets[i].Spec.Replicas > *sets[j].Spec.Replicas
	})
}

// sortBySizeOlder puts larger first, and older first among equals (where
// scale-downs go first).
func sortBySizeOlder(sets []*appsv1.ReplicaSet) {
	sort.Slice(sets, func(i, j int) bool {
		if *sets[i].Spec.Replicas == *sets[j].Spec.Replicas {
			return createdBefore(sets[i], sets[j])
		}
		return *sets[i].Spec.Replicas > *sets[j].Spec.Replicas
	})
}

// sortByRevision puts lower revisions first, then older.
func sortByRevision(sets []*appsv1.ReplicaSet) {
	sort.Slice(sets, func(i, j int) bool {
		ri, _ := Revision(sets[i])
		rj, _ := Revision(sets[j])
		if ri == rj {
			return createdBefore(sets[i], sets[j])
		}
		return ri < rj
	})
}

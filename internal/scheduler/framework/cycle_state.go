package framework

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// StateKey names one plugin's data in a CycleState.
type StateKey string

// StateData is what a plugin keeps in a CycleState.
type StateData interface {
	// Clone copies the data; data never changed after PreFilter may
	// return itself.
	Clone() StateData
}

// CycleState is the data plugins share during one scheduling attempt of
// one pod. It is written during PreFilter and PreScore, which run one at a
// time, and only read by Filter and Score, which run in parallel.
type CycleState struct {
	storage map[StateKey]StateData
	// SkipFilterPlugins and SkipScorePlugins are the plugins whose
	// PreFilter or PreScore answered Skip.
	SkipFilterPlugins sets.Set[string]
	SkipScorePlugins  sets.Set[string]
	// PodInfo is the pod being scheduled, derived once per cycle.
	PodInfo *PodInfo
	// filters are the Filter plugins to run, once PreFilter decided.
	filters []FilterPlugin
}

// SetFilters records the Filter plugins to run this cycle.
func (c *CycleState) SetFilters(f []FilterPlugin) { c.filters = f }

// Filters returns the Filter plugins recorded with SetFilters (nil: not
// recorded).
func (c *CycleState) Filters() []FilterPlugin { return c.filters }

// PodInfoOf returns the cycle's derived PodInfo of pod, or derives it.
func PodInfoOf(state *CycleState, pod *corev1.Pod) *PodInfo {
	if state != nil && state.PodInfo != nil && state.PodInfo.Pod.UID == pod.UID {
		return state.PodInfo
	}
	return NewPodInfo(pod)
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState {
	return &CycleState{storage: map[StateKey]StateData{}}
}

// Read returns the data under key.
func (c *CycleState) Read(key StateKey) (StateData, error) {
	if v, ok := c.storage[key]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s: no such key in the cycle state", key)
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, val StateData) { c.storage[key] = val }

// Delete removes key.
func (c *CycleState) Delete(key StateKey) { delete(c.storage, key) }

// Clone copies the state, cloning each plugin's data.
func (c *CycleState) Clone() *CycleState {
	if c == nil {
		return nil
	}
	out := &CycleState{storage: make(map[StateKey]StateData, len(c.storage)), PodInfo: c.PodInfo, filters: c.filters}
	for k, v := range c.storage {
		out.storage[k] = v.Clone()
	}
	if c.SkipFilterPlugins != nil {
		out.SkipFilterPlugins = c.SkipFilterPlugins.Clone()
	}
	if c.SkipScorePlugins != nil {
		out.SkipScorePlugins = c.SkipScorePlugins.Clone()
	}
	return out
}

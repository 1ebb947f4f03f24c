package agent

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/havre/havre/internal/agent/volumes"
)

// volumeStatsInterval is how often claim volumes are measured (the
// kubelet's volume stats cache period is a minute: a walk of a big volume
// is not free).
const volumeStatsInterval = time.Minute

// VolumeStats is a pod volume's usage, as the kubelet's summary API
// reports it in a pod's `volume` entries (and kubelet_volume_stats_*
// derives from).
type VolumeStats struct {
	// Name is the pod's volume; PVCRef its claim.
	Name   string
	PVCRef PVCReference
	Time   time.Time
	// CapacityBytes is the volume's size: its backing's figure when the
	// agent has one, else the smaller of its PersistentVolume's capacity
	// and its filesystem's. AvailableBytes is what can still be written;
	// UsedBytes what the volume's files take.
	CapacityBytes, AvailableBytes, UsedBytes uint64
	// Inodes and InodesFree are the filesystem's; InodesUsed the
	// volume's files and directories.
	Inodes, InodesFree, InodesUsed uint64
}

// PVCReference names a claim.
type PVCReference struct{ Name, Namespace string }

// volumeStatsLoop measures the mounted claim volumes every
// volumeStatsInterval until ctx is done.
func (a *Agent) volumeStatsLoop(ctx context.Context) {
	t := time.NewTicker(volumeStatsInterval)
	defer t.Stop()
	for {
		a.collectVolumeStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collectVolumeStats measures every mounted claim volume once.
func (a *Agent) collectVolumeStats(ctx context.Context) {
	next := map[types.UID][]VolumeStats{}
	a.mountedClaims.Range(func(key, value any) bool {
		uid := key.(types.UID)
		for _, m := range value.([]mountedClaim) {
			if ctx.Err() != nil {
				return false
			}
			s, err := a.measureClaim(ctx, m)
			if err != nil {
				slog.Debug("measuring a volume", "pod", m.namespace+"/"+m.pod, "volume", m.claim.Volume, "err", err)
				continue
			}
			next[uid] = append(next[uid], s)
		}
		return true
	})
	a.stats.mu.Lock()
	a.stats.volumes = next
	a.stats.mu.Unlock()
}

// measureClaim samples one claim volume.
func (a *Agent) measureClaim(ctx context.Context, m mountedClaim) (VolumeStats, error) {
	u, err := volumes.Measure(m.claim.Path)
	if err != nil {
		return VolumeStats{}, err
	}
	s := VolumeStats{
		Name: m.claim.Volume, PVCRef: PVCReference{Name: m.claim.ClaimName, Namespace: m.namespace}, Time: a.now(),
		CapacityBytes: u.CapacityBytes, AvailableBytes: u.AvailableBytes, UsedBytes: u.UsedBytes,
		Inodes: u.Inodes, InodesFree: u.InodesFree, InodesUsed: u.InodesUsed,
	}
	if a.volumeUsage != nil {
		if used, capacity, ok := a.volumeUsage(ctx, m.claim.PV.Name); ok && capacity > 0 {
			s.UsedBytes, s.CapacityBytes = uint64(max(used, 0)), uint64(capacity)
			s.AvailableBytes = min(u.AvailableBytes, s.CapacityBytes-min(s.UsedBytes, s.CapacityBytes))
			return s, nil
		}
	}
	// A volume that is a directory of a bigger filesystem (no quota)
	// is as big as its PersistentVolume says, and no bigger than the
	// filesystem.
	if q, ok := m.claim.PV.Spec.Capacity[corev1.ResourceStorage]; ok && q.Value() > 0 && uint64(q.Value()) < s.CapacityBytes {
		s.CapacityBytes = uint64(q.Value())
		s.AvailableBytes = min(u.AvailableBytes, s.CapacityBytes-min(s.UsedBytes, s.CapacityBytes))
	}
	return s, nil
}

package agent

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is what the agent needs of a CRI runtime. runtime.CRI implements
// it over gRPC; unit tests use a fake.
type Runtime interface {
	Version(ctx context.Context) (*runtimeapi.VersionResponse, error)
	Status(ctx context.Context) (*runtimeapi.RuntimeStatus, error)

	RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error)
	StopPodSandbox(ctx context.Context, id string) error
	RemovePodSandbox(ctx context.Context, id string) error
	PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error)
	ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error)

	CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, timeout int64) error
	RemoveContainer(ctx context.Context, id string) error
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error)

	ImageStatus(ctx context.Context, image string) (*runtimeapi.Image, error)
	PullImage(ctx context.Context, image string, sandboxCfg *runtimeapi.PodSandboxConfig) (string, error)

	// ExecSync runs probes' and hooks' commands (see runtime.CRI.ExecSync).
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error)
	ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)
	ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error)
}

// Labels and annotations on sandboxes and containers, as the kubelet sets
// them (so crictl and other tools show them alike).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	// labelManagedBy marks what this agent created.
	labelManagedBy = "io.havre.managed-by"
	managedBy      = "havre-agent"

	annotationRestartCount = "io.kubernetes.container.restartCount"
	annotationGrace        = "io.kubernetes.pod.terminationGracePeriod"
	annotationImage        = "io.havre.container.image"
	annotationInit         = "io.havre.container.init"
	annotationTermMsgPath  = "io.kubernetes.container.terminationMessagePath"
)

// containerState is what the agent knows of one container instance.
type containerState struct {
	ID        string
	Name      string
	SandboxID string
	Attempt   uint32
	State     runtimeapi.ContainerState
	Image     string // as the spec named it (annotation)
	ImageRef  string
	CreatedAt time.Time
	StartedAt time.Time
	// FinishedAt, ExitCode, Reason and Message are set once exited.
	FinishedAt time.Time
	ExitCode   int32
	Reason     string
	Message    string
}

// podState is what runs for one pod: sandboxes and containers, newest
// first.
type podState struct {
	Sandboxes  []*runtimeapi.PodSandbox
	Containers []*containerState
}

// empty reports whether nothing is left of the pod in the runtime.
func (s *podState) empty() bool { return len(s.Sandboxes) == 0 && len(s.Containers) == 0 }

// current returns the newest sandbox, or nil.
func (s *podState) current() *runtimeapi.PodSandbox {
	if len(s.Sandboxes) == 0 {
		return nil
	}
	return s.Sandboxes[0]
}

// instances returns the instances of the named container, newest first;
// with sandboxID set, only those in that sandbox.
func (s *podState) instances(name, sandboxID string) []*containerState {
	var out []*containerState
	for _, c := range s.Containers {
		if c.Name == name && (sandboxID == "" || c.SandboxID == sandboxID) {
			out = append(out, c)
		}
	}
	return out
}

// latest returns the newest instance of the named container in a sandbox.
func (s *podState) latest(name, sandboxID string) *containerState {
	if in := s.instances(name, sandboxID); len(in) > 0 {
		return in[0]
	}
	return nil
}

// statusCache keeps the CRI status of containers whose status can no longer
// change (exited), so a sync asks the runtime only about the others.
type statusCache struct {
	mu     sync.Mutex
	exited map[string]*containerState
}

func (c *statusCache) get(id string) *containerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited[id]
}

func (c *statusCache) put(s *containerState) {
	if s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exited == nil {
		c.exited = map[string]*containerState{}
	}
	c.exited[s.ID] = s
}

func (c *statusCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.exited, id)
}

// observe reads what runs for a pod from the runtime.
func observe(ctx context.Context, rt Runtime, cache *statusCache, uid types.UID) (*podState, error) {
	sel := map[string]string{labelPodUID: string(uid)}
	sandboxes, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	containers, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	st := &podState{Sandboxes: sandboxes}
	sort.SliceStable(st.Sandboxes, func(i, j int) bool {
		a, b := st.Sandboxes[i], st.Sandboxes[j]
		if a.Metadata.GetAttempt() != b.Metadata.GetAttempt() {
			return a.Metadata.GetAttempt() > b.Metadata.GetAttempt()
		}
		return a.CreatedAt > b.CreatedAt
	})
	for _, c := range containers {
		if cached := cache.get(c.Id); cached != nil {
			st.Containers = append(st.Containers, cached)
			continue
		}
		cs := &containerState{
			ID:        c.Id,
			Name:      c.GetMetadata().GetName(),
			SandboxID: c.PodSandboxId,
			Attempt:   c.GetMetadata().GetAttempt(),
			State:     c.State,
			Image:     c.Annotations[annotationImage],
			ImageRef:  c.ImageRef,
			CreatedAt: time.Unix(0, c.CreatedAt),
		}
		if cs.Image == "" {
			cs.Image = c.GetImage().GetImage()
		}
		if n, err := strconv.ParseUint(c.Annotations[annotationRestartCount], 10, 32); err == nil {
			cs.Attempt = uint32(n)
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			status, err := rt.ContainerStatus(ctx, c.Id)
			if err != nil {
				return nil, err
			}
			if status != nil {
				cs.State = status.State
				if status.StartedAt > 0 {
					cs.StartedAt = time.Unix(0, status.StartedAt)
				}
				if status.FinishedAt > 0 {
					cs.FinishedAt = time.Unix(0, status.FinishedAt)
				}
				cs.ExitCode = status.ExitCode
				cs.Reason = status.Reason
				cs.Message = status.Message
				if status.ImageRef != "" {
					cs.ImageRef = status.ImageRef
				}
				if cs.State == runtimeapi.ContainerState_CONTAINER_EXITED && cs.Message == "" {
					cs.Message = readTerminationMessage(c.Annotations[annotationTermMsgPath])
				}
			}
			cache.put(cs)
		}
		st.Containers = append(st.Containers, cs)
	}
	sort.SliceStable(st.Containers, func(i, j int) bool {
		a, b := st.Containers[i], st.Containers[j]
		if a.Attempt != b.Attempt {
			return a.Attempt > b.Attempt
		}
		return a.CreatedAt.After(b.CreatedAt)
	})
	return st, nil
}

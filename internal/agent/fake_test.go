package agent

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime is an in-memory CRI runtime: sandboxes and containers change
// state only when told to (or when stopped).
type fakeRuntime struct {
	mu         sync.Mutex
	next       int
	sandboxes  map[string]*runtimeapi.PodSandbox
	containers map[string]*fakeContainer
	images     map[string]bool
	pullErr    error
	// sandboxErr fails RunPodSandbox as containerd 1.6 does when the
	// network setup fails: the sandbox is kept, not ready.
	sandboxErr error
	networkOK  bool
	calls      []string
	now        func() time.Time

	// execFn answers ExecSync (default: exit 0); stats are what the stats
	// calls return (see fake_exec_test.go).
	execFn          func(id string, cmd []string) (stdout []byte, exitCode int32, err error)
	ctrStats        []*runtimeapi.ContainerStats
	sandboxStats    []*runtimeapi.PodSandboxStats
	sandboxStatsErr error
}

type fakeContainer struct {
	c      *runtimeapi.Container
	status *runtimeapi.ContainerStatus
	config *runtimeapi.ContainerConfig
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{
		sandboxes: map[string]*runtimeapi.PodSandbox{}, containers: map[string]*fakeContainer{},
		images: map[string]bool{"img": true}, networkOK: true, now: time.Now,
	}
}

func (f *fakeRuntime) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// Calls returns and forgets the calls made so far.
func (f *fakeRuntime) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeRuntime) id(prefix string) string {
	f.next++
	return fmt.Sprintf("%s%d", prefix, f.next)
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeRuntime) Version(context.Context) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "containerd", RuntimeVersion: "fake"}, nil
}

func (f *fakeRuntime) Status(context.Context) (*runtimeapi.RuntimeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: f.networkOK},
	}}, nil
}

func (f *fakeRuntime) RunPodSandbox(_ context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("sb")
	f.sandboxes[id] = &runtimeapi.PodSandbox{Id: id, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		CreatedAt: f.now().UnixNano(), Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations)}
	f.record("RunPodSandbox %s attempt=%d", cfg.Metadata.Name, cfg.Metadata.Attempt)
	if f.sandboxErr != nil {
		f.sandboxes[id].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		return "", f.sandboxErr
	}
	return id, nil
}

func (f *fakeRuntime) StopPodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[id]
	if !ok {
		return nil
	}
	s.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	for _, c := range f.containers {
		if c.c.PodSandboxId == id && c.c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			f.exitLocked(c, 137, "Error")
		}
	}
	f.record("StopPodSandbox %s", id)
	return nil
}

func (f *fakeRuntime) RemovePodSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sandboxes, id)
	for cid, c := range f.containers {
		if c.c.PodSandboxId == id {
			delete(f.containers, cid)
		}
	}
	f.record("RemovePodSandbox %s", id)
	return nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[id]
	if !ok {
		return nil, status.Error(codes.NotFound, "no sandbox")
	}
	return &runtimeapi.PodSandboxStatus{Id: id, State: s.State, Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.42.0.7"}}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, s := range f.sandboxes {
		if matches(s.Labels, filter.GetLabelSelector()) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("c")
	f.containers[id] = &fakeContainer{
		c: &runtimeapi.Container{Id: id, PodSandboxId: sandboxID, Metadata: cfg.Metadata, Image: cfg.Image, ImageRef: "sha256:img",
			State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: f.now().UnixNano(), Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations)},
		status: &runtimeapi.ContainerStatus{Id: id, Metadata: cfg.Metadata, State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: f.now().UnixNano(), ImageRef: "sha256:img"},
		config: cfg,
	}
	f.record("CreateContainer %s attempt=%d", cfg.Metadata.Name, cfg.Metadata.Attempt)
	return id, nil
}

func (f *fakeRuntime) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	c.c.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.status.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.status.StartedAt = f.now().UnixNano()
	f.record("StartContainer %s", c.c.Metadata.Name)
	return nil
}

func (f *fakeRuntime) exitLocked(c *fakeContainer, code int32, reason string) {
	c.c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.status.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.status.FinishedAt = f.now().UnixNano()
	c.status.ExitCode = code
	c.status.Reason = reason
}

// Exit makes the named running container exit.
func (f *fakeRuntime) Exit(name string, code int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.c.Metadata.Name == name && c.c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			reason := "Error"
			if code == 0 {
				reason = "Completed"
			}
			f.exitLocked(c, code, reason)
		}
	}
}

func (f *fakeRuntime) StopContainer(_ context.Context, id string, timeout int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	if c.c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		f.exitLocked(c, 143, "Error")
	}
	f.record("StopContainer %s timeout=%d", c.c.Metadata.Name, timeout)
	return nil
}

func (f *fakeRuntime) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	f.record("RemoveContainer %s", id)
	return nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if matches(c.c.Labels, filter.GetLabelSelector()) {
			out = append(out, proto.Clone(c.c).(*runtimeapi.Container))
		}
	}
	return out, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil, status.Error(codes.NotFound, "no container")
	}
	return proto.Clone(c.status).(*runtimeapi.ContainerStatus), nil
}

func (f *fakeRuntime) ImageStatus(_ context.Context, image string) (*runtimeapi.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.images[image] {
		return nil, nil
	}
	return &runtimeapi.Image{Id: "sha256:" + image, RepoTags: []string{image}, Uid: &runtimeapi.Int64Value{Value: 0}}, nil
}

func (f *fakeRuntime) PullImage(_ context.Context, image string, _ *runtimeapi.PodSandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("PullImage %s", image)
	if f.pullErr != nil {
		return "", f.pullErr
	}
	f.images[image] = true
	return "sha256:" + image, nil
}

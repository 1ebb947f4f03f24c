package agent

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (f *fakeRuntime) ExecSync(_ context.Context, id string, cmd []string, _ time.Duration) ([]byte, []byte, int32, error) {
	f.mu.Lock()
	fn := f.execFn
	name := id
	if c, ok := f.containers[id]; ok {
		name = c.c.Metadata.Name
	}
	f.record("ExecSync %s %s", name, strings.Join(cmd, " "))
	f.mu.Unlock()
	if fn == nil {
		return nil, nil, 0, nil
	}
	out, code, err := fn(id, cmd)
	return out, nil, code, err
}

func (f *fakeRuntime) ListContainerStats(context.Context, *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.ContainerStats
	for _, s := range f.ctrStats {
		out = append(out, proto.Clone(s).(*runtimeapi.ContainerStats))
	}
	return out, nil
}

func (f *fakeRuntime) ListPodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sandboxStatsErr != nil {
		return nil, f.sandboxStatsErr
	}
	var out []*runtimeapi.PodSandboxStats
	for _, s := range f.sandboxStats {
		out = append(out, proto.Clone(s).(*runtimeapi.PodSandboxStats))
	}
	return out, nil
}

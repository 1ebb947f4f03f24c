package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"

	"github.com/havre/havre/internal/agent"
	"github.com/havre/havre/internal/agent/hollow"
)

// hollowFlags are `havre agent`'s hollow node flags: with --hollow N the
// agent runs N simulated nodes instead of a real one (no root, no
// containerd).
type hollowFlags struct {
	count               int
	prefix, cpu, memory string
	maxPods, workers    int
	heartbeat           time.Duration
}

func (f *hollowFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&f.count, "hollow", 0, "run this many hollow (simulated) nodes instead of a real one: they register, heartbeat and report their pods Running without running containers")
	fs.StringVar(&f.prefix, "hollow-prefix", "", "hollow nodes are named <prefix>-<i> (default hollow-<hostname>)")
	fs.StringVar(&f.cpu, "hollow-cpu", hollow.DefaultCPU, "cpu capacity of each hollow node")
	fs.StringVar(&f.memory, "hollow-memory", hollow.DefaultMemory, "memory capacity of each hollow node")
	fs.IntVar(&f.maxPods, "hollow-max-pods", hollow.DefaultMaxPods, "pod capacity of each hollow node")
	fs.IntVar(&f.workers, "hollow-workers", hollow.DefaultWorkers, "pod status workers shared by the hollow nodes")
	fs.DurationVar(&f.heartbeat, "hollow-heartbeat-interval", hollow.DefaultLeaseRenewInterval, "how often each hollow node renews its Lease and checks its status (the kubelet's 10s; shorter for tests with a short --node-monitor-grace-period)")
}

// run runs the hollow nodes until ctx is done.
func (f *hollowFlags) run(ctx context.Context, cfg *rest.Config) error {
	prefix := f.prefix
	if prefix == "" {
		host, err := agent.DefaultNodeName()
		if err != nil {
			return fmt.Errorf("host name: %w (pass --hollow-prefix)", err)
		}
		prefix = "hollow-" + host
	}
	a, err := hollow.New(hollow.Options{
		RESTConfig: cfg, Count: f.count, Prefix: prefix,
		CPU: f.cpu, Memory: f.memory, MaxPods: f.maxPods, Workers: f.workers,
		LeaseRenewInterval: f.heartbeat, StatusUpdateInterval: f.heartbeat,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

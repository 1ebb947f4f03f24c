package cli

import (
	"fmt"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/havre/havre/internal/controller"
)

// addNodeLifecycleFlags adds `havre server`'s node lifecycle flags, named
// as kube-controller-manager's and kube-apiserver's.
func addNodeLifecycleFlags(f *pflag.FlagSet, o *controller.Options) {
	o.NodeMonitorGracePeriodSeconds = 40
	f.Var(&secondsFlag{&o.NodeMonitorGracePeriodSeconds}, "node-monitor-grace-period",
		"how long a node may go without renewing its Lease or posting its status before it is marked NotReady (Unknown) and tainted unreachable (whole seconds)")
	f.Int64Var(&o.DefaultNotReadyTolerationSeconds, "default-not-ready-toleration-seconds", 300,
		"tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration added to pods without one (0: the default)")
	f.Int64Var(&o.DefaultUnreachableTolerationSeconds, "default-unreachable-toleration-seconds", 300,
		"tolerationSeconds of the node.kubernetes.io/unreachable:NoExecute toleration added to pods without one (0: the default)")
}

// secondsFlag is a duration flag kept in whole seconds (rounded up).
type secondsFlag struct{ p *int64 }

func (s *secondsFlag) String() string {
	if s.p == nil {
		return "0s"
	}
	return (time.Duration(*s.p) * time.Second).String()
}

func (s *secondsFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("must be positive, got %s", v)
	}
	*s.p = int64(math.Ceil(d.Seconds()))
	return nil
}

func (s *secondsFlag) Type() string { return "duration" }

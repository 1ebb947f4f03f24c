package scheduler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havre/havre/internal/scheduler/plugins/noderesources"
)

func TestLoadConfig(t *testing.T) {
	const head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
	for _, tc := range []struct {
		name, yaml string
		check      func(*Config) bool
		err        string
	}{
		{name: "empty", yaml: head, check: func(c *Config) bool {
			return c.Fit.ScoringStrategy.Type == noderesources.LeastAllocated && c.SchedulerName == "default-scheduler"
		}},
		{name: "MostAllocated", yaml: head + `profiles:
- pluginConfig:
  - name: NodeResourcesFit
    args:
      apiVersion: kubescheduler.config.k8s.io/v1
      kind: NodeResourcesFitArgs
      scoringStrategy:
        type: MostAllocated
`, check: func(c *Config) bool {
			return c.Fit.ScoringStrategy.Type == noderesources.MostAllocated && len(c.Fit.ScoringStrategy.Resources) == 2
		}},
		{name: "backoff, percentage, weights and disabled", yaml: head + `podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
percentageOfNodesToScore: 30
profiles:
- schedulerName: my-scheduler
  plugins:
    score:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      disabled:
      - name: NodeResourcesBalancedAllocation
`, check: func(c *Config) bool {
			return c.PodInitialBackoff == 2*time.Second && c.PodMaxBackoff == 20*time.Second && c.PercentageOfNodesToScore == 30 &&
				c.SchedulerName == "my-scheduler" && c.weight("NodeResourcesFit") == 5 && c.Disabled.Has("NodeResourcesBalancedAllocation")
		}},
		{name: "VolumeBinding bindTimeoutSeconds", yaml: head + `profiles:
- pluginConfig:
  - name: VolumeBinding
    args:
      kind: VolumeBindingArgs
      bindTimeoutSeconds: 30
`, check: func(c *Config) bool { return c.VolumeBinding.BindTimeoutSeconds == 30 }},
		{name: "default bindTimeoutSeconds", yaml: head, check: func(c *Config) bool { return c.VolumeBinding.BindTimeoutSeconds == 600 }},
		{name: "negative bindTimeoutSeconds", yaml: head + "profiles:\n- pluginConfig:\n  - name: VolumeBinding\n    args:\n      bindTimeoutSeconds: -1\n",
			err: "profiles[0].pluginConfig[0].args.bindTimeoutSeconds: Invalid value: -1"},
		{name: "wrong apiVersion", yaml: "apiVersion: v1\nkind: KubeSchedulerConfiguration\n", err: `apiVersion: Unsupported value: "v1"`},
		{name: "unknown field", yaml: head + "bogus: 1\n", err: `unknown field "bogus"`},
		{name: "unknown strategy", yaml: head + "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: Fullest\n",
			err: `profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: "Fullest"`},
		{name: "unknown plugin", yaml: head + "profiles:\n- pluginConfig:\n  - name: Nope\n", err: `unknown plugin`},
		{name: "two profiles", yaml: head + "profiles:\n- schedulerName: a\n- schedulerName: b\n", err: "only one profile"},
		{name: "bad percentage", yaml: head + "percentageOfNodesToScore: 120\n", err: "not in valid range"},
		{name: "max backoff below initial", yaml: head + "podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n", err: "podMaxBackoffSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming the file and containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file is not an error")
	}
	if cfg, err := LoadConfig(""); err != nil || cfg.Fit.ScoringStrategy.Type != noderesources.LeastAllocated {
		t.Errorf("default config: %v %v", cfg, err)
	}
}

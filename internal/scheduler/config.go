package scheduler

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"

	"github.com/havre/havre/internal/scheduler/plugins/defaultbinder"
	"github.com/havre/havre/internal/scheduler/plugins/defaultpreemption"
	"github.com/havre/havre/internal/scheduler/plugins/interpodaffinity"
	"github.com/havre/havre/internal/scheduler/plugins/nodeaffinity"
	"github.com/havre/havre/internal/scheduler/plugins/nodename"
	"github.com/havre/havre/internal/scheduler/plugins/nodeports"
	"github.com/havre/havre/internal/scheduler/plugins/noderesources"
	"github.com/havre/havre/internal/scheduler/plugins/nodeunschedulable"
	"github.com/havre/havre/internal/scheduler/plugins/podtopologyspread"
	"github.com/havre/havre/internal/scheduler/plugins/tainttoleration"
	"github.com/havre/havre/internal/scheduler/plugins/volumebinding"
	"github.com/havre/havre/internal/scheduler/plugins/volumerestrictions"
)

// The configuration file's type, as kube-scheduler's.
const (
	ConfigAPIVersion = "kubescheduler.config.k8s.io/v1"
	ConfigKind       = "KubeSchedulerConfiguration"
)

// Config is the scheduler's configuration.
type Config struct {
	// SchedulerName: only pods naming it are scheduled.
	SchedulerName string
	// PercentageOfNodesToScore: 0 is upstream's adaptive share.
	PercentageOfNodesToScore int32
	PodInitialBackoff        time.Duration
	PodMaxBackoff            time.Duration
	// Parallelism is the number of goroutines filtering and scoring (0:
	// GOMAXPROCS).
	Parallelism int
	Fit         noderesources.FitArgs
	Preemption  defaultpreemption.Args
	// VolumeBinding's arguments: how long PreBind waits for claims.
	VolumeBinding volumebinding.Args
	// Disabled plugins are left out; Weights override score weights.
	Disabled sets.Set[string]
	Weights  map[string]int64
}

// DefaultConfig is upstream's default profile.
func DefaultConfig() *Config {
	return &Config{
		SchedulerName:     corev1.DefaultSchedulerName,
		PodInitialBackoff: time.Second,
		PodMaxBackoff:     10 * time.Second,
		Fit:               noderesources.FitArgs{ScoringStrategy: &noderesources.ScoringStrategy{Type: noderesources.LeastAllocated, Resources: noderesources.DefaultResources}},
		Preemption:        defaultpreemption.DefaultArgs(),
		VolumeBinding:     volumebinding.DefaultArgs(),
		Disabled:          sets.New[string](),
		Weights:           map[string]int64{},
	}
}

// defaultWeights are upstream's score weights.
var defaultWeights = map[string]int64{
	tainttoleration.Name:                 3,
	nodeaffinity.Name:                    2,
	podtopologyspread.Name:               2,
	interpodaffinity.Name:                2,
	noderesources.FitName:                1,
	noderesources.BalancedAllocationName: 1,
	nodename.Name:                        0,
	nodeports.Name:                       0,
	nodeunschedulable.Name:               0,
	defaultpreemption.Name:               0,
	defaultbinder.Name:                   0,
	volumerestrictions.Name:              0,
	volumebinding.Name:                   0,
	"PrioritySort":                       0,
}

// pluginNames are the known plugins, in upstream's default order.
var pluginNames = []string{
	"PrioritySort", nodeunschedulable.Name, nodename.Name, tainttoleration.Name, nodeaffinity.Name, nodeports.Name,
	noderesources.FitName, volumerestrictions.Name, volumebinding.Name, podtopologyspread.Name, interpodaffinity.Name, defaultpreemption.Name,
	noderesources.BalancedAllocationName, defaultbinder.Name,
}

type fileConfig struct {
	APIVersion                string            `json:"apiVersion"`
	Kind                      string            `json:"kind"`
	Parallelism               *int32            `json:"parallelism,omitempty"`
	PercentageOfNodesToScore  *int32            `json:"percentageOfNodesToScore,omitempty"`
	PodInitialBackoffSeconds  *int64            `json:"podInitialBackoffSeconds,omitempty"`
	PodMaxBackoffSeconds      *int64            `json:"podMaxBackoffSeconds,omitempty"`
	LeaderElection            json.RawMessage   `json:"leaderElection,omitempty"`
	ClientConnection          json.RawMessage   `json:"clientConnection,omitempty"`
	EnableProfiling           *bool             `json:"enableProfiling,omitempty"`
	EnableContentionProfiling *bool             `json:"enableContentionProfiling,omitempty"`
	DelayCacheUntilActive     bool              `json:"delayCacheUntilActive,omitempty"`
	Extenders                 []json.RawMessage `json:"extenders,omitempty"`
	Profiles                  []fileProfile     `json:"profiles,omitempty"`
}

type fileProfile struct {
	SchedulerName            string             `json:"schedulerName,omitempty"`
	PercentageOfNodesToScore *int32             `json:"percentageOfNodesToScore,omitempty"`
	Plugins                  *filePlugins       `json:"plugins,omitempty"`
	PluginConfig             []filePluginConfig `json:"pluginConfig,omitempty"`
}

type filePlugins struct {
	PreEnqueue *pluginSet `json:"preEnqueue,omitempty"`
	QueueSort  *pluginSet `json:"queueSort,omitempty"`
	PreFilter  *pluginSet `json:"preFilter,omitempty"`
	Filter     *pluginSet `json:"filter,omitempty"`
	PostFilter *pluginSet `json:"postFilter,omitempty"`
	PreScore   *pluginSet `json:"preScore,omitempty"`
	Score      *pluginSet `json:"score,omitempty"`
	Reserve    *pluginSet `json:"reserve,omitempty"`
	Permit     *pluginSet `json:"permit,omitempty"`
	PreBind    *pluginSet `json:"preBind,omitempty"`
	Bind       *pluginSet `json:"bind,omitempty"`
	PostBind   *pluginSet `json:"postBind,omitempty"`
	MultiPoint *pluginSet `json:"multiPoint,omitempty"`
}

type pluginSet struct {
	Enabled  []pluginRef `json:"enabled,omitempty"`
	Disabled []pluginRef `json:"disabled,omitempty"`
}

type pluginRef struct {
	Name   string `json:"name"`
	Weight *int32 `json:"weight,omitempty"`
}

type filePluginConfig struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// LoadConfig reads a KubeSchedulerConfiguration file; an empty path gives
// the defaults. Supported: percentageOfNodesToScore, parallelism, the
// backoff seconds, one profile with its schedulerName, plugins enabled
// (score weights) and disabled, and the pluginConfig of NodeResourcesFit
// (scoringStrategy LeastAllocated or MostAllocated), DefaultPreemption and
// VolumeBinding (bindTimeoutSeconds).
func LoadConfig(path string) (*Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the scheduler configuration: %w", err)
	}
	if err := cfg.parse(data); err != nil {
		return nil, fmt.Errorf("scheduler configuration %s: %w", path, err)
	}
	return cfg, nil
}

func (cfg *Config) parse(data []byte) error {
	var f fileConfig
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return err
	}
	if f.APIVersion != ConfigAPIVersion {
		return fmt.Errorf("apiVersion: Unsupported value: %q: supported values: %q", f.APIVersion, ConfigAPIVersion)
	}
	if f.Kind != ConfigKind {
		return fmt.Errorf("kind: Unsupported value: %q: supported values: %q", f.Kind, ConfigKind)
	}
	if len(f.Extenders) > 0 {
		return fmt.Errorf("extenders: Forbidden: extenders are not supported")
	}
	if v := f.Parallelism; v != nil {
		if *v <= 0 {
			return fmt.Errorf("parallelism: Invalid value: %d: should be an integer value greater than zero", *v)
		}
		cfg.Parallelism = int(*v)
	}
	if err := setPercentage(&cfg.PercentageOfNodesToScore, f.PercentageOfNodesToScore, "percentageOfNodesToScore"); err != nil {
		return err
	}
	if v := f.PodInitialBackoffSeconds; v != nil {
		if *v <= 0 {
			return fmt.Errorf("podInitialBackoffSeconds: Invalid value: %d: must be greater than 0", *v)
		}
		cfg.PodInitialBackoff = time.Duration(*v) * time.Second
	}
	if v := f.PodMaxBackoffSeconds; v != nil {
		if *v <= 0 {
			return fmt.Errorf("podMaxBackoffSeconds: Invalid value: %d: must be greater than 0", *v)
		}
		cfg.PodMaxBackoff = time.Duration(*v) * time.Second
	}
	if cfg.PodMaxBackoff < cfg.PodInitialBackoff {
		return fmt.Errorf("podMaxBackoffSeconds: Invalid value: %d: must be greater than or equal to PodInitialBackoffSeconds", int64(cfg.PodMaxBackoff/time.Second))
	}
	switch len(f.Profiles) {
	case 0:
		return nil
	case 1:
	default:
		return fmt.Errorf("profiles: Too many: %d: only one profile is supported", len(f.Profiles))
	}
	p := f.Profiles[0]
	if p.SchedulerName != "" {
		cfg.SchedulerName = p.SchedulerName
	}
	if err := setPercentage(&cfg.PercentageOfNodesToScore, p.PercentageOfNodesToScore, "profiles[0].percentageOfNodesToScore"); err != nil {
		return err
	}
	if p.Plugins != nil {
		if err := cfg.parsePlugins(p.Plugins); err != nil {
			return err
		}
	}
	seen := sets.New[string]()
	for i, pc := range p.PluginConfig {
		fld := fmt.Sprintf("profiles[0].pluginConfig[%d]", i)
		if seen.Has(pc.Name) {
			return fmt.Errorf("%s: Duplicate value: %q", fld, pc.Name)
		}
		seen.Insert(pc.Name)
		if err := cfg.parseArgs(fld, pc); err != nil {
			return err
		}
	}
	return nil
}

func setPercentage(dst *int32, v *int32, fld string) error {
	if v == nil {
		return nil
	}
	if *v < 0 || *v > 100 {
		return fmt.Errorf("%s: Invalid value: %d: not in valid range [0-100]", fld, *v)
	}
	*dst = *v
	return nil
}

func (cfg *Config) parsePlugins(p *filePlugins) error {
	points := map[string]*pluginSet{
		"preEnqueue": p.PreEnqueue, "queueSort": p.QueueSort, "preFilter": p.PreFilter, "filter": p.Filter,
		"postFilter": p.PostFilter, "preScore": p.PreScore, "score": p.Score, "reserve": p.Reserve,
		"permit": p.Permit, "preBind": p.PreBind, "bind": p.Bind, "postBind": p.PostBind, "multiPoint": p.MultiPoint,
	}
	names := make([]string, 0, len(points))
	for n := range points {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, point := range names {
		set := points[point]
		if set == nil {
			continue
		}
		for i, ref := range set.Disabled {
			fld := fmt.Sprintf("profiles[0].plugins.%s.disabled[%d]", point, i)
			if ref.Name == "*" {
				return fmt.Errorf("%s.name: Unsupported value: \"*\": disable plugins by name", fld)
			}
			if _, ok := defaultWeights[ref.Name]; !ok {
				return fmt.Errorf("%s.name: Invalid value: %q: unknown plugin (known: %v)", fld, ref.Name, pluginNames)
			}
			cfg.Disabled.Insert(ref.Name)
		}
	}
	for _, point := range names {
		set := points[point]
		if set == nil {
			continue
		}
		for i, ref := range set.Enabled {
			fld := fmt.Sprintf("profiles[0].plugins.%s.enabled[%d]", point, i)
			if _, ok := defaultWeights[ref.Name]; !ok {
				return fmt.Errorf("%s.name: Invalid value: %q: unknown plugin (known: %v)", fld, ref.Name, pluginNames)
			}
			cfg.Disabled.Delete(ref.Name)
			if ref.Weight != nil {
				if *ref.Weight < 0 || *ref.Weight > 100 {
					return fmt.Errorf("%s.weight: Invalid value: %d: must be in the range [0, 100]", fld, *ref.Weight)
				}
				cfg.Weights[ref.Name] = int64(*ref.Weight)
			}
		}
	}
	return nil
}

func (cfg *Config) parseArgs(fld string, pc filePluginConfig) error {
	switch pc.Name {
	case noderesources.FitName:
		var args noderesources.FitArgs
		if err := decodeArgs(pc.Args, &args, noderesources.FitName+"Args"); err != nil {
			return fmt.Errorf("%s.args: %w", fld, err)
		}
		if err := args.Validate(); err != nil {
			return fmt.Errorf("%s.args.%w", fld, err)
		}
		if args.ScoringStrategy == nil {
			args.ScoringStrategy = cfg.Fit.ScoringStrategy
		}
		if len(args.ScoringStrategy.Resources) == 0 {
			args.ScoringStrategy.Resources = noderesources.DefaultResources
		}
		cfg.Fit = args
	case defaultpreemption.Name:
		args := defaultpreemption.DefaultArgs()
		if err := decodeArgs(pc.Args, &args, defaultpreemption.Name+"Args"); err != nil {
			return fmt.Errorf("%s.args: %w", fld, err)
		}
		if err := args.Validate(); err != nil {
			return fmt.Errorf("%s.args.%w", fld, err)
		}
		cfg.Preemption = args
	case volumebinding.Name:
		args := volumebinding.DefaultArgs()
		if err := decodeArgs(pc.Args, &args, volumebinding.Name+"Args"); err != nil {
			return fmt.Errorf("%s.args: %w", fld, err)
		}
		if err := args.Validate(); err != nil {
			return fmt.Errorf("%s.args.%w", fld, err)
		}
		cfg.VolumeBinding = args
	default:
		if _, ok := defaultWeights[pc.Name]; !ok {
			return fmt.Errorf("%s.name: Invalid value: %q: unknown plugin", fld, pc.Name)
		}
		return fmt.Errorf("%s.args: Unsupported value: arguments of plugin %q are not supported", fld, pc.Name)
	}
	return nil
}

// decodeArgs decodes a plugin's args strictly; apiVersion and kind may be
// given, as upstream's typed args carry them.
func decodeArgs(raw json.RawMessage, into any, kind string) error {
	if len(raw) == 0 {
		return nil
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return err
	}
	if meta.Kind != "" && meta.Kind != kind {
		return fmt.Errorf("kind: Unsupported value: %q: supported values: %q", meta.Kind, kind)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	clean, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return yaml.UnmarshalStrict(clean, into)
}

// weight is a score plugin's weight.
func (cfg *Config) weight(name string) int64 {
	if w, ok := cfg.Weights[name]; ok {
		return w
	}
	return defaultWeights[name]
}

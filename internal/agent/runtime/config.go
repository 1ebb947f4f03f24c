package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
)

// Snapshotters the agent chooses between.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// maxSocketPath is the longest path a unix socket may have (sun_path is 108
// bytes with its terminating NUL), less the ".ttrpc" suffix containerd adds
// for its second socket.
const maxSocketPath = 107 - len(".ttrpc")

// Layout is where the agent's containerd keeps its files.
type Layout struct {
	// Dir is <data-dir>/agent/containerd.
	Dir string
}

// Config is the configuration file.
func (l Layout) Config() string { return filepath.Join(l.Dir, "config.toml") }

// Root is containerd's persistent root (content, snapshots, metadata).
func (l Layout) Root() string { return filepath.Join(l.Dir, "root") }

// State is containerd's state directory (bundles, fifos, sandbox files).
func (l Layout) State() string { return filepath.Join(l.Dir, "state") }

// Socket is the gRPC (and CRI) socket.
func (l Layout) Socket() string { return filepath.Join(l.Dir, "containerd.sock") }

// Log is where containerd's output goes.
func (l Layout) Log() string { return filepath.Join(l.Dir, "containerd.log") }

// PIDFile records the process id of the running containerd.
func (l Layout) PIDFile() string { return filepath.Join(l.Dir, "containerd.pid") }

// Opt is containerd's "opt" plugin directory.
func (l Layout) Opt() string { return filepath.Join(l.Dir, "opt") }

// ContainerdConfig holds what varies in the containerd configuration.
type ContainerdConfig struct {
	Layout Layout
	// Snapshotter is SnapshotterOverlay or SnapshotterNative.
	Snapshotter string
	// RestrictOOMScoreAdj clamps requested OOM score adjustments to
	// containerd's own, needed when the process lacks CAP_SYS_RESOURCE.
	RestrictOOMScoreAdj bool
	// SandboxImage is the pause image every pod sandbox runs.
	SandboxImage string
	// CNIBinDir holds the CNI plugins, CNIConfDir the network
	// configuration the agent writes.
	CNIBinDir  string
	CNIConfDir string
	// LogLevel is containerd's log level ("info" unless set).
	LogLevel string
}

var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(
	`# Written by the havre agent at every start; edits are overwritten.
version = 2
root = {{q .Layout.Root}}
state = {{q .Layout.State}}
oom_score = 0
required_plugins = ["io.containerd.grpc.v1.cri"]
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = {{q .Layout.Socket}}

[ttrpc]
  address = {{q (print .Layout.Socket ".ttrpc")}}

[debug]
  level = {{q .LogLevel}}

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {{q .Layout.Opt}}

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {{q .SandboxImage}}
    restrict_oom_score_adj = {{.RestrictOOMScoreAdj}}
    netns_mounts_under_state_dir = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    max_container_log_line_size = 16384
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = {{q .Snapshotter}}
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {{q .CNIBinDir}}
      conf_dir = {{q .CNIConfDir}}
      max_conf_num = 1
`))

// Render returns the TOML configuration file.
func (c ContainerdConfig) Render() ([]byte, error) {
	if c.Layout.Dir == "" || c.SandboxImage == "" || c.CNIBinDir == "" || c.CNIConfDir == "" {
		return nil, errors.New("containerd config: layout, sandbox image and CNI directories are required")
	}
	if c.Snapshotter != SnapshotterOverlay && c.Snapshotter != SnapshotterNative {
		return nil, fmt.Errorf("containerd config: unknown snapshotter %q", c.Snapshotter)
	}
	if n := len(c.Layout.Socket()); n > maxSocketPath {
		return nil, fmt.Errorf("containerd socket path %s is %d bytes, longer than the %d a unix socket allows: choose a shorter --data-dir", c.Layout.Socket(), n, maxSocketPath)
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// HasCapSysResource reports whether this process may lower OOM score
// adjustments (CAP_SYS_RESOURCE in its effective set).
func HasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	has, err := capEffHas(data, capSysResource)
	return err == nil && has
}

// capEffHas reports whether the CapEff line of a /proc/PID/status text has
// capability bit set.
func capEffHas(status []byte, bit uint) (bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		if err != nil {
			return false, fmt.Errorf("CapEff: %w", err)
		}
		return v&(1<<bit) != 0, nil
	}
	return false, errors.New("no CapEff line")
}

// DetectSnapshotter returns SnapshotterOverlay if an overlay filesystem can
// be mounted with its directories under dir (the filesystem containerd's
// root lives on), else SnapshotterNative.
func DetectSnapshotter(dir string) string {
	if err := overlaySupported(dir); err != nil {
		return SnapshotterNative
	}
	return SnapshotterOverlay
}

func overlaySupported(dir string) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	td, err := os.MkdirTemp(dir, ".overlay-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(td)
	for _, d := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(td, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s",
		filepath.Join(td, "lower2"), filepath.Join(td, "lower1"), filepath.Join(td, "upper"), filepath.Join(td, "work"))
	merged := filepath.Join(td, "merged")
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting overlay: %w", err)
	}
	return syscall.Unmount(merged, 0)
}

// FindCNIBinDir returns the first of dirs holding the bridge plugin.
func FindCNIBinDir(dirs ...string) (string, error) {
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "bridge")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
	}
	return "", fmt.Errorf("no CNI plugins (bridge, host-local, portmap, loopback) in %s: install containernetworking-plugins", strings.Join(dirs, ", "))
}

// ConfiguredSnapshotter returns the CRI snapshotter named in a containerd
// configuration file this package wrote, or "".
func ConfiguredSnapshotter(configPath string) string {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "snapshotter = "); ok {
			if s, err := strconv.Unquote(v); err == nil {
				return s
			}
		}
	}
	return ""
}

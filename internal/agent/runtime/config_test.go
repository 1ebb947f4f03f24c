package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	base := ContainerdConfig{
		Layout:       Layout{Dir: "/var/lib/havre/agent/containerd"},
		Snapshotter:  SnapshotterOverlay,
		SandboxImage: "havre.local/pause:1",
		CNIBinDir:    "/usr/lib/cni",
		CNIConfDir:   "/var/lib/havre/agent/cni/net.d",
	}
	for _, tc := range []struct {
		name    string
		mod     func(*ContainerdConfig)
		want    []string
		wantErr string
	}{
		{name: "defaults", mod: func(*ContainerdConfig) {}, want: []string{
			`root = "/var/lib/havre/agent/containerd/root"`,
			`state = "/var/lib/havre/agent/containerd/state"`,
			`address = "/var/lib/havre/agent/containerd/containerd.sock"`,
			`address = "/var/lib/havre/agent/containerd/containerd.sock.ttrpc"`,
			`sandbox_image = "havre.local/pause:1"`,
			`restrict_oom_score_adj = false`,
			`snapshotter = "overlayfs"`,
			`bin_dir = "/usr/lib/cni"`,
			`conf_dir = "/var/lib/havre/agent/cni/net.d"`,
			`SystemdCgroup = false`,
			`level = "info"`,
		}},
		{name: "restricted native", mod: func(c *ContainerdConfig) {
			c.RestrictOOMScoreAdj = true
			c.Snapshotter = SnapshotterNative
		}, want: []string{`restrict_oom_score_adj = true`, `snapshotter = "native"`}},
		{name: "quoting", mod: func(c *ContainerdConfig) { c.SandboxImage = `a"b\c` }, want: []string{`sandbox_image = "a\"b\\c"`}},
		{name: "unknown snapshotter", mod: func(c *ContainerdConfig) { c.Snapshotter = "zfs" }, wantErr: "unknown snapshotter"},
		{name: "missing image", mod: func(c *ContainerdConfig) { c.SandboxImage = "" }, wantErr: "required"},
		{name: "socket too long", mod: func(c *ContainerdConfig) { c.Layout.Dir = "/" + strings.Repeat("x", 100) }, wantErr: "shorter --data-dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			out, err := c.Render()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Render: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := ConfiguredSnapshotter(path); got != c.Snapshotter {
				t.Errorf("ConfiguredSnapshotter = %q, want %q", got, c.Snapshotter)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("config lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCapEffHas(t *testing.T) {
	for _, tc := range []struct {
		status string
		bit    uint
		want   bool
		err    bool
	}{
		{"Name:\tx\nCapEff:\t000001fffeffffff\n", 24, false, false},
		{"CapEff:\t000001ffffffffff\n", 24, true, false},
		{"CapEff:\t0000000000000000\n", 0, false, false},
		{"CapEff:\t0000000000000001\n", 0, true, false},
		{"Name:\tx\n", 24, false, true},
		{"CapEff:\tzz\n", 24, false, true},
	} {
		got, err := capEffHas([]byte(tc.status), tc.bit)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("capEffHas(%q, %d) = %v, %v; want %v (error %v)", tc.status, tc.bit, got, err, tc.want, tc.err)
		}
	}
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/x.sock": "/run/x.sock",
		"unix:/run/x.sock":   "/run/x.sock",
		"/run/x.sock":        "/run/x.sock",
		"tcp://1.2.3.4:5":    "",
		"relative.sock":      "",
	} {
		got, err := socketPath(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("socketPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestFindCNIBinDir(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(b, "bridge"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := FindCNIBinDir(a, b); err != nil || got != b {
		t.Errorf("FindCNIBinDir = %q, %v; want %q", got, err, b)
	}
	if _, err := FindCNIBinDir(a); err == nil {
		t.Error("FindCNIBinDir without plugins succeeded")
	}
}

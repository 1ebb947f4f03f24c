package podsecurity

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	psaapi "k8s.io/pod-security-admission/admission/api"
)

func TestLoadConfiguration(t *testing.T) {
	const psc = `apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: baseline
  warn: restricted
  warn-version: v1.30
exemptions:
  usernames: [ci-bot]
  runtimeClasses: [kata]
  namespaces: [kube-system]
`
	configured := &psaapi.PodSecurityConfiguration{
		Defaults: psaapi.PodSecurityDefaults{
			Enforce: "baseline", EnforceVersion: "latest",
			Audit: "privileged", AuditVersion: "latest",
			Warn: "restricted", WarnVersion: "v1.30",
		},
		Exemptions: psaapi.PodSecurityExemptions{
			Usernames: []string{"ci-bot"}, RuntimeClasses: []string{"kata"}, Namespaces: []string{"kube-system"},
		},
	}
	// Havre's default, spelled out (DefaultConfiguration would make the
	// cases using it unable to fail).
	havreDefault := &psaapi.PodSecurityConfiguration{Defaults: psaapi.PodSecurityDefaults{
		Enforce: "privileged", EnforceVersion: "latest", Audit: "baseline", AuditVersion: "latest",
		Warn: "baseline", WarnVersion: "latest"}}
	admissionConfig := func(entry string) string {
		return "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n" + entry
	}
	indent := func(s, prefix string) string {
		return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
	}
	tests := []struct {
		name string
		// files are written in one directory; the first is the one loaded
		// ("" for no file).
		files [][2]string
		want  *psaapi.PodSecurityConfiguration
		err   string
	}{
		{name: "no file: Havre's default", want: havreDefault},
		{name: "inline", files: [][2]string{{"admission.yaml",
			admissionConfig("- name: PodSecurity\n  configuration:\n" + indent(psc, "    "))}}, want: configured},
		{name: "relative path", files: [][2]string{
			{"admission.yaml", admissionConfig("- name: PodSecurity\n  path: psa/podsecurity.yaml\n")},
			{"psa/podsecurity.yaml", psc}}, want: configured},
		{name: "other plugins only: Havre's default", files: [][2]string{{"admission.yaml",
			admissionConfig("- name: EventRateLimit\n  path: eventconfig.yaml\n")}}, want: havreDefault},
		{name: "a PodSecurityConfiguration itself", files: [][2]string{{"podsecurity.yaml", psc}}, want: configured},
		{name: "upstream's defaults for what is left out", files: [][2]string{{"podsecurity.yaml",
			"apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"}},
			want: &psaapi.PodSecurityConfiguration{Defaults: psaapi.PodSecurityDefaults{
				Enforce: "privileged", EnforceVersion: "latest", Audit: "privileged", AuditVersion: "latest",
				Warn: "privileged", WarnVersion: "latest"}}},
		{name: "missing file", files: [][2]string{{"", ""}}, err: "reading the admission configuration: open "},
		{name: "missing plugin file", files: [][2]string{
			{"admission.yaml", admissionConfig("- name: PodSecurity\n  path: nowhere.yaml\n")}},
			err: "plugin PodSecurity: open "},
		{name: "invalid level", files: [][2]string{{"podsecurity.yaml",
			"apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  enforce: strict\n"}},
			err: `plugin PodSecurity: defaults.enforce: Invalid value: "strict": must be one of privileged, baseline, restricted`},
		{name: "invalid version", files: [][2]string{{"podsecurity.yaml",
			"apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\ndefaults:\n  warn-version: one\n"}},
			err: `plugin PodSecurity: defaults.warn-version: Invalid value: "one"`},
		{name: "unknown field", files: [][2]string{{"admission.yaml", admissionConfig("- name: PodSecurity\n  bogus: 1\n")}},
			err: `unknown field "plugins[0].bogus"`},
		{name: "unknown kind", files: [][2]string{{"x.yaml", "apiVersion: v1\nkind: ConfigMap\n"}},
			err: `no kind "ConfigMap" is registered`},
		{name: "not YAML", files: [][2]string{{"x.yaml", "{"}}, err: "error converting YAML to JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := ""
			for i, f := range tt.files {
				p := filepath.Join(dir, f[0])
				if f[0] == "" {
					p = filepath.Join(dir, "missing.yaml")
				} else {
					if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(f[1]), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if i == 0 {
					path = p
				}
			}
			got, err := LoadConfiguration(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

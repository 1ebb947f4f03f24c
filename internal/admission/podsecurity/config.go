// Package podsecurity is upstream's PodSecurity admission plugin for
// Havre's admission chain: k8s.io/pod-security-admission's admission
// logic (the pod-security.kubernetes.io/{enforce,audit,warn} namespace
// labels and their -version labels, levels privileged, baseline and
// restricted) called from a k8s.io/apiserver ValidationInterface, as
// kube-apiserver's plugin does.
//
// It is configured as kube-apiserver's: by an AdmissionConfiguration
// (apiserver.config.k8s.io/v1) file, given with --admission-control-config-file,
// whose PodSecurity entry holds a PodSecurityConfiguration
// (pod-security.admission.config.k8s.io/v1) inline or by path. Without one,
// Havre's default applies (DefaultConfiguration): enforce privileged, warn
// and audit baseline, no exemptions.
package podsecurity

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	apiserverapi "k8s.io/apiserver/pkg/apis/apiserver"
	apiserverinstall "k8s.io/apiserver/pkg/apis/apiserver/install"
	psaapi "k8s.io/pod-security-admission/admission/api"
	"k8s.io/pod-security-admission/admission/api/load"
	"k8s.io/pod-security-admission/admission/api/validation"
	"k8s.io/pod-security-admission/api"
	"sigs.k8s.io/yaml"
)

// PluginName is the plugin's name in the chain and in an
// AdmissionConfiguration, as upstream's.
const PluginName = "PodSecurity"

// DefaultConfiguration is Havre's cluster default when no configuration is
// given: nothing is refused (enforce privileged), but pods and pod
// templates that baseline would refuse get a warning (and would be
// audited). Unlike upstream's default (privileged for all three modes).
func DefaultConfiguration() *psaapi.PodSecurityConfiguration {
	return &psaapi.PodSecurityConfiguration{
		Defaults: psaapi.PodSecurityDefaults{
			Enforce: string(api.LevelPrivileged), EnforceVersion: string(api.VersionLatest),
			Audit: string(api.LevelBaseline), AuditVersion: string(api.VersionLatest),
			Warn: string(api.LevelBaseline), WarnVersion: string(api.VersionLatest),
		},
	}
}

// LoadConfiguration reads the PodSecurity configuration from the file at
// path (kube-apiserver's --admission-control-config-file): an
// AdmissionConfiguration (apiserver.config.k8s.io/v1) whose PodSecurity
// entry holds a PodSecurityConfiguration inline (configuration) or in a
// file (path, relative to the AdmissionConfiguration's directory), or,
// for convenience, a PodSecurityConfiguration file itself. An empty path,
// or an AdmissionConfiguration without a PodSecurity entry, gives
// DefaultConfiguration. Fields a PodSecurityConfiguration leaves out take
// upstream's defaults (privileged, latest), as in kube-apiserver.
func LoadConfiguration(path string) (*psaapi.PodSecurityConfiguration, error) {
	if path == "" {
		return DefaultConfiguration(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the admission configuration: %w", err)
	}
	cfg, err := parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("admission configuration %s: %w", path, err)
	}
	return cfg, nil
}

// parse reads an AdmissionConfiguration or a PodSecurityConfiguration
// read from the file at path.
func parse(path string, data []byte) (*psaapi.PodSecurityConfiguration, error) {
	var typ metav1.TypeMeta
	if err := yaml.Unmarshal(data, &typ); err != nil {
		return nil, err
	}
	if typ.Kind == "PodSecurityConfiguration" {
		return loadPodSecurity(data)
	}
	scheme := runtime.NewScheme()
	apiserverinstall.Install(scheme)
	obj, err := runtime.Decode(serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDecoder(), data)
	if err != nil {
		return nil, err
	}
	ac, ok := obj.(*apiserverapi.AdmissionConfiguration)
	if !ok {
		return nil, fmt.Errorf("expected AdmissionConfiguration or PodSecurityConfiguration, got %T", obj)
	}
	for _, p := range ac.Plugins {
		if p.Name != PluginName {
			continue
		}
		switch {
		case p.Configuration != nil:
			return loadPodSecurity(p.Configuration.Raw)
		case p.Path != "":
			file := p.Path
			if !filepath.IsAbs(file) {
				file = filepath.Join(filepath.Dir(path), file)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %w", PluginName, err)
			}
			cfg, err := loadPodSecurity(data)
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %s: %w", PluginName, file, err)
			}
			return cfg, nil
		}
	}
	return DefaultConfiguration(), nil
}

// loadPodSecurity decodes, defaults and validates a
// PodSecurityConfiguration with upstream's loader.
func loadPodSecurity(data []byte) (*psaapi.PodSecurityConfiguration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("plugin %s: empty configuration", PluginName)
	}
	cfg, err := load.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", PluginName, err)
	}
	if errs := validation.ValidatePodSecurityConfiguration(cfg); len(errs) > 0 {
		return nil, fmt.Errorf("plugin %s: %w", PluginName, errs.ToAggregate())
	}
	return cfg, nil
}

package policy

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating"

	hadmission "github.com/havre/havre/internal/admission"
)

// MutatingPluginName is the MutatingAdmissionPolicy plugin's name, as
// kube-apiserver's.
const MutatingPluginName = mutating.PluginName

// MutatingPlugin is the MutatingAdmissionPolicy admission plugin: the
// library's (ApplyConfiguration and JSONPatch mutations, the schemas of
// the mutated kinds from the server's OpenAPI v3), enabled by the
// MutatingAdmissionPolicy feature gate (on by default), with the same
// RESTMapper as Plugin.
type MutatingPlugin struct {
	*mutating.Plugin
}

var _ admission.MutationInterface = (*MutatingPlugin)(nil)

// NewMutating returns the plugin, uninitialised, as New.
func NewMutating() (admission.Interface, error) {
	inner, err := mutating.NewPlugin(nil)
	if err != nil {
		return nil, err
	}
	return &MutatingPlugin{Plugin: inner}, nil
}

// SetRESTMapper implements initializer.WantsRESTMapper, as Plugin's.
func (p *MutatingPlugin) SetRESTMapper(m meta.RESTMapper) {
	if r, ok := m.(meta.ResettableRESTMapper); ok {
		m = &resettingMapper{ResettableRESTMapper: r}
	}
	p.Plugin.SetRESTMapper(m)
}

// MutatingFactory is the MutatingAdmissionPolicy plugin's entry in the
// server's admission chain.
var MutatingFactory = hadmission.Factory{Name: MutatingPluginName, New: NewMutating}

// Package admission is the API server's generic admission: a chain of
// k8s.io/apiserver admission plugins (webhooks, policies) called on every
// write, and the ObjectInterfaces they convert and create objects with.
//
// The API server calls Admit (mutating plugins, in registration order)
// after its built-in defaulting and admission steps and before validation,
// then Validate (validating plugins, in order) after validation and before
// the object is stored. Plugins are registered in internal/server before
// the server runs; plugins that need informers start them in a PostStart
// hook and report ready once synced.
package admission

import (
	"context"
	"sync"

	"k8s.io/apiserver/pkg/admission"
)

// Chain is the ordered list of admission plugins. It implements
// admission.MutationInterface and admission.ValidationInterface. Register
// may be called at any time; a request sees the plugins registered when
// it reaches the chain.
type Chain struct {
	mu      sync.RWMutex
	plugins []Plugin
}

// Plugin is one named plugin of the chain.
type Plugin struct {
	Name string
	admission.Interface
}

// NewChain returns an empty chain.
func NewChain() *Chain { return &Chain{} }

// Register appends a plugin: its Admit (if it is a MutationInterface) runs
// after those registered earlier, and likewise its Validate.
func (c *Chain) Register(name string, p admission.Interface) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plugins = append(c.plugins, Plugin{Name: name, Interface: p})
}

// Plugins returns the registered plugins in order.
func (c *Chain) Plugins() []Plugin {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]Plugin(nil), c.plugins...)
}

// Handles reports whether any plugin handles the operation.
func (c *Chain) Handles(op admission.Operation) bool {
	for _, p := range c.Plugins() {
		if p.Handles(op) {
			return true
		}
	}
	return false
}

// Admit runs the mutating plugins that handle the operation, in order, and
// stops at the first error, which is returned as the plugin gave it.
func (c *Chain) Admit(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	for _, p := range c.Plugins() {
		m, ok := p.Interface.(admission.MutationInterface)
		if !ok || !p.Handles(a.GetOperation()) {
			continue
		}
		if err := m.Admit(ctx, a, o); err != nil {
			return err
		}
	}
	return nil
}

// Validate runs the validating plugins that handle the operation, in
// order, and stops at the first error.
func (c *Chain) Validate(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	for _, p := range c.Plugins() {
		v, ok := p.Interface.(admission.ValidationInterface)
		if !ok || !p.Handles(a.GetOperation()) {
			continue
		}
		if err := v.Validate(ctx, a, o); err != nil {
			return err
		}
	}
	return nil
}

var (
	_ admission.MutationInterface   = (*Chain)(nil)
	_ admission.ValidationInterface = (*Chain)(nil)
)

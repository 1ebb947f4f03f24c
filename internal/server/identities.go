package server

import (
	"github.com/havre/havre/internal/apiserver"
	"github.com/havre/havre/internal/controller"
	"k8s.io/client-go/rest"
)

// configFor is the loopback client config of an in-process identity.
func configFor(srv *apiserver.Server, id identity) (*rest.Config, error) {
	if id.user == "" {
		return srv.LoopbackConfig(), nil
	}
	return srv.LoopbackConfigAs(id.user, id.groups...)
}

// contextFor is the controller Context of a controller running as id.
func contextFor(srv *apiserver.Server, shared *controller.Context, id identity) (*controller.Context, error) {
	cfg, err := configFor(srv, id)
	if err != nil {
		return nil, err
	}
	return shared.As(cfg)
}

// nodeIdentity is the identity of the node agent of node name, as a
// kubelet's client certificate would authenticate it (group system:nodes,
// bound to havre:node-agent by the bootstrap policy).
func nodeIdentity(name string) identity {
	return identity{user: "system:node:" + name, groups: []string{"system:nodes"}}
}

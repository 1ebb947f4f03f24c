package routes

import (
	"fmt"
	"strings"
)

// The names Havre's edge parts agree on.
const (
	// IngressClassName is the IngressClass Havre creates at start, marked
	// default (ingressclass.kubernetes.io/is-default-class).
	IngressClassName = "havre"
	// IngressController is its spec.controller.
	IngressController = "havre.io/ingress"
	// GatewayController is the controllerName of GatewayClasses Havre
	// implements; Havre creates the GatewayClass GatewayClassName.
	GatewayController = "havre.io/gateway-controller"
	GatewayClassName  = "havre"
	// ChallengesSecret (in kube-system) holds the pending ACME challenges
	// every proxy node answers (written by the certificates controller).
	ChallengesNamespace = "kube-system"
	ChallengesSecret    = "havre-acme-challenges"
)

// Source is one translator's contribution to the table (Ingresses, Gateway
// API routes). Build is called after Changed fires (and once at start);
// it must be cheap enough to run on every change.
type Source interface {
	Build() *Table
	Changed() <-chan struct{}
}

// DefaultTLSSecretName is where a certificate is kept for entry index of
// an Ingress's spec.tls that names no Secret: the certificates controller
// writes it and the proxy reads it.
func DefaultTLSSecretName(ingress string, index int) string {
	name := fmt.Sprintf("%s-tls-%d", ingress, index)
	if len(name) > 253 {
		name = strings.TrimRight(name[:253], "-.")
	}
	return name
}

// The ports listeners name for the proxy's two standard ports: a Listener
// of Port HTTPPort is served on the node's --ingress-http-port, one of
// HTTPSPort on its --ingress-https-port (Ingresses and Gateway listeners
// on 80/443 alike); other ports are served as they are.
const (
	HTTPPort  int32 = 80
	HTTPSPort int32 = 443
)

// NodeLabel is the label every node agent puts on its Node: "true" when
// the node runs the ingress proxy, "false" with --disable-ingress. The
// status controllers publish the InternalIPs of ready nodes labelled
// "true" as Ingress and Gateway addresses.
const NodeLabel = "havre.io/ingress-proxy"

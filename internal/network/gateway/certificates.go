package gateway

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// CertificateRequest is a Secret an HTTPS listener (tls mode Terminate) of
// a Gateway of Havre's refers to, and the host name its certificate must
// cover: what the certificates controller keeps issued.
type CertificateRequest struct {
	Gateway  types.NamespacedName
	Listener gatewayv1.SectionName
	Secret   types.NamespacedName
	Hostname string
}

// CertificateRequests lists, for the Gateways of Havre's GatewayClasses,
// each HTTPS listener's certificateRefs that the Gateway may use (Secrets
// of its namespace, or of another one a ReferenceGrant opens), for
// listeners with a hostname (a listener without one names nothing to
// certify). Wildcard hostnames are included as they are.
func CertificateRequests(s *Snapshot) []CertificateRequest {
	r := &resolver{s: s}
	ours := map[string]bool{}
	for _, c := range s.Classes {
		if Ours(c) {
			ours[c.Name] = true
		}
	}
	var out []CertificateRequest
	for _, g := range s.Gateways {
		if !ours[string(g.Spec.GatewayClassName)] {
			continue
		}
		for _, l := range g.Spec.Listeners {
			if l.Protocol != gatewayv1.HTTPSProtocolType || l.Hostname == nil || l.TLS == nil ||
				(l.TLS.Mode != nil && *l.TLS.Mode != gatewayv1.TLSModeTerminate) {
				continue
			}
			for _, ref := range l.TLS.CertificateRefs {
				if groupOr(ref.Group, "") != "" || kindOr(ref.Kind, "Secret") != "Secret" {
					continue
				}
				ns := g.Namespace
				if ref.Namespace != nil {
					ns = string(*ref.Namespace)
				}
				if ns != g.Namespace && !r.granted(Group, "Gateway", g.Namespace, "", "Secret", ns, string(ref.Name)) {
					continue
				}
				out = append(out, CertificateRequest{
					Gateway:  types.NamespacedName{Namespace: g.Namespace, Name: g.Name},
					Listener: l.Name,
					Secret:   types.NamespacedName{Namespace: ns, Name: string(ref.Name)},
					Hostname: string(*l.Hostname),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b CertificateRequest) int {
		if c := compareNN(a.Secret, b.Secret); c != 0 {
			return c
		}
		if c := compareNN(a.Gateway, b.Gateway); c != 0 {
			return c
		}
		return cmp.Compare(a.Listener, b.Listener)
	})
	return out
}

func compareNN(a, b types.NamespacedName) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

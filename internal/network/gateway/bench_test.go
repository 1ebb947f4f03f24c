package gateway

import (
	"fmt"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BenchmarkResolve1000Routes: the table and statuses of one Gateway with
// 1,000 HTTPRoutes of their own host and three rules each, as a node
// rebuilds them on every change.
func BenchmarkResolve1000Routes(b *testing.B) {
	objs := []any{havreClass(), svc("ns", "web"), gw("ns", "g", httpListener("http", 80, ""))}
	for i := range 1000 {
		objs = append(objs, httpRoute("ns", fmt.Sprintf("r%d", i), i, []gatewayv1.ParentReference{parent("", "g")},
			[]gatewayv1.Hostname{gatewayv1.Hostname(fmt.Sprintf("h%d.example.com", i))},
			gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{exact("/health")}, BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}},
			gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{prefix("/api")}, BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}},
			gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{backend("web", 80, nil)}},
		))
	}
	s := snapshot(objs...)
	b.ReportAllocs()
	for b.Loop() {
		if res := Resolve(s); len(res.Table.Listeners[0].Hosts) != 1000 {
			b.Fatal(len(res.Table.Listeners[0].Hosts))
		}
	}
}

//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package printers_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEndpointsCells(t *testing.T) {
	runCellTests(t, []cellTest{
		{"EndpointsNone", &corev1.Endpoints{ObjectMeta: meta("ep")}, map[string]interface{}{"Endpoints": "<none>", "Age": "2d"}},
		{"Endpoints", &corev1.Endpoints{ObjectMeta: meta("ep"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "fd00::1"}},
			Ports:     []corev1.EndpointPort{{Port: 8080}},
		}}}, map[string]interface{}{"Endpoints": "10.0.0.1:8080,[fd00::1]:8080"}},
		{"EndpointsMore", &corev1.Endpoints{ObjectMeta: meta("ep"), Subsets: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}, Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}},
			{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.3"}}},
		}}, map[string]interface{}{"Endpoints": "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."}},
		{"EndpointsHeadlessNoPorts", &corev1.Endpoints{ObjectMeta: meta("ep"), Subsets: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}},
		}}, map[string]interface{}{"Endpoints": "10.0.0.1"}},
	})
}

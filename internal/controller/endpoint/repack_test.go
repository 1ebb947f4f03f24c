//lint:file-ignore SA1019 core/v1 Endpoints is deprecated upstream but still served.

package endpoint

import (
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

func addr(ip, uid string) corev1.EndpointAddress {
	a := corev1.EndpointAddress{IP: ip}
	if uid != "" {
		a.TargetRef = &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}
	}
	return a
}

func port(name string, p int32) corev1.EndpointPort {
	return corev1.EndpointPort{Name: name, Port: p, Protocol: corev1.ProtocolTCP}
}

func ready(ports []corev1.EndpointPort, addrs ...corev1.EndpointAddress) corev1.EndpointSubset {
	return corev1.EndpointSubset{Addresses: addrs, Ports: ports}
}

func unready(ports []corev1.EndpointPort, addrs ...corev1.EndpointAddress) corev1.EndpointSubset {
	return corev1.EndpointSubset{NotReadyAddresses: addrs, Ports: ports}
}

func ports(ps ...corev1.EndpointPort) []corev1.EndpointPort { return ps }

func TestRepackSubsets(t *testing.T) {
	http, http2, metrics := port("http", 8080), port("http", 9090), port("metrics", 9100)
	tests := []struct {
		name string
		in   []corev1.EndpointSubset
		want []corev1.EndpointSubset
	}{
		{name: "empty", in: nil, want: []corev1.EndpointSubset{}},
		{
			name: "one port, addresses merged and sorted numerically",
			in: []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.10", "b")), ready(ports(http), addr("10.0.0.9", "a")),
				unready(ports(http), addr("10.0.0.3", "c"))},
			want: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{addr("10.0.0.9", "a"), addr("10.0.0.10", "b")},
				NotReadyAddresses: []corev1.EndpointAddress{addr("10.0.0.3", "c")}, Ports: ports(http)}},
		},
		{
			name: "same port name, different numbers per pod",
			in:   []corev1.EndpointSubset{ready(ports(http2), addr("10.0.0.2", "b")), ready(ports(http), addr("10.0.0.1", "a"))},
			want: []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.1", "a")), ready(ports(http2), addr("10.0.0.2", "b"))},
		},
		{
			name: "ports offered by the same addresses share a subset",
			in: []corev1.EndpointSubset{ready(ports(metrics), addr("10.0.0.1", "a")), ready(ports(http), addr("10.0.0.1", "a")),
				ready(ports(http), addr("10.0.0.2", "b"))},
			want: []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.1", "a"), addr("10.0.0.2", "b")),
				ready(ports(metrics), addr("10.0.0.1", "a"))},
		},
		{
			name: "multi-port subsets",
			in:   []corev1.EndpointSubset{ready(ports(metrics, http), addr("10.0.0.2", "b")), ready(ports(http, metrics), addr("10.0.0.1", "a"))},
			want: []corev1.EndpointSubset{ready(ports(http, metrics), addr("10.0.0.1", "a"), addr("10.0.0.2", "b"))},
		},
		{
			name: "ready wins over not ready",
			in:   []corev1.EndpointSubset{unready(ports(http), addr("10.0.0.1", "a")), ready(ports(http), addr("10.0.0.1", "a"))},
			want: []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.1", "a"))},
		},
		{
			name: "same IP, different pods are two addresses",
			in:   []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.1", "b"), addr("10.0.0.1", "a"))},
			want: []corev1.EndpointSubset{ready(ports(http), addr("10.0.0.1", "a"), addr("10.0.0.1", "b"))},
		},
		{
			name: "no ports kept",
			in:   []corev1.EndpointSubset{ready(nil, addr("10.0.0.2", "")), ready(nil, addr("10.0.0.1", ""))},
			want: []corev1.EndpointSubset{ready(nil, addr("10.0.0.1", ""), addr("10.0.0.2", ""))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RepackSubsets(tt.in)
			if !apiequality.Semantic.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			// Any order of the input packs the same.
			for range 10 {
				shuffled := append([]corev1.EndpointSubset(nil), tt.in...)
				rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if again := RepackSubsets(shuffled); !apiequality.Semantic.DeepEqual(again, got) {
					t.Fatalf("input order changed the result: %+v", again)
				}
			}
		})
	}
}

package discovery

import (
	"context"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func validSlice() *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, NodeName: new("node-1"),
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}, {Port: new(int32(9090))}},
	}
	EndpointSliceStrategy{}.Default(es)
	return es
}

func TestEndpointSlice(t *testing.T) {
	s, ctx := EndpointSliceStrategy{}, context.Background()
	es := validSlice()
	if *es.Ports[0].Protocol != "TCP" || es.Ports[1].Name == nil {
		t.Errorf("defaults: %+v", es.Ports)
	}
	if errs := s.Validate(ctx, es); len(errs) > 0 {
		t.Errorf("valid slice: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		field  string
		typ    field.ErrorType
	}{
		{"no addressType", func(e *discoveryv1.EndpointSlice) { e.AddressType = "" }, "addressType", field.ErrorTypeRequired},
		{"bad addressType", func(e *discoveryv1.EndpointSlice) { e.AddressType = "MAC" }, "addressType", field.ErrorTypeNotSupported},
		{"IPv6 in IPv4 slice", func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses[0] = "fd00::1" }, "endpoints[0].addresses[0]", field.ErrorTypeInvalid},
		{"loopback", func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses[0] = "127.0.0.1" }, "endpoints[0].addresses[0]", field.ErrorTypeInvalid},
		{"no addresses", func(e *discoveryv1.EndpointSlice) { e.Endpoints[0].Addresses = nil }, "endpoints[0].addresses", field.ErrorTypeRequired},
		{"duplicate port name", func(e *discoveryv1.EndpointSlice) { e.Ports[1].Name = new("http") }, "ports[1].name", field.ErrorTypeDuplicate},
		{"bad protocol", func(e *discoveryv1.EndpointSlice) { *e.Ports[0].Protocol = "HTTP" }, "ports[0].protocol", field.ErrorTypeNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validSlice()
			tc.mutate(e)
			errs := s.Validate(ctx, e)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ {
				t.Errorf("got %v, want %s %s", errs, tc.typ, tc.field)
			}
		})
	}
	fqdn := validSlice()
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	fqdn.Endpoints[0].Addresses = []string{"db.example.com"}
	if errs := s.ValidateUpdate(ctx, fqdn, es); len(errs) != 1 || errs[0].Field != "addressType" {
		t.Errorf("addressType change: %v", errs)
	}
}

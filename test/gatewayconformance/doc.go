// Package gatewayconformance runs the Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance) against Havre. It is a module of
// its own so that the main module does not require controller-runtime.
package gatewayconformance

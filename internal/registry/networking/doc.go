// Package networking holds the strategies for the networking.k8s.io/v1
// kinds: Ingresses, IngressClasses and NetworkPolicies.
package networking

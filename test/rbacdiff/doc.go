// Package rbacdiff checks Havre's RBAC against upstream's own code: the
// bootstrap policy object for object against k8s.io/kubernetes's
// bootstrappolicy, and Havre's authorizer against kube-apiserver's RBAC
// authorizer on random roles, bindings and requests.
//
// It is a module of its own so that the main module never requires
// k8s.io/kubernetes; hack/test.sh runs it.
package rbacdiff

package rbacdiff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"

	"github.com/havre/havre/internal/auth/rbac/bootstrap"
)

var update = flag.Bool("update", false, "rewrite internal/auth/rbac/bootstrap/policy.json from upstream's bootstrap policy")

// upstreamPolicy is k8s.io/kubernetes's bootstrap policy, as kube-apiserver
// creates it at start.
func upstreamPolicy() bootstrap.Policy {
	return bootstrap.Policy{
		ClusterRoles:           bootstrappolicy.ClusterRoles(),
		ClusterRoleBindings:    bootstrappolicy.ClusterRoleBindings(),
		ControllerRoles:        bootstrappolicy.ControllerRoles(),
		ControllerRoleBindings: bootstrappolicy.ControllerRoleBindings(),
		NamespaceRoles:         bootstrappolicy.NamespaceRoles(),
		NamespaceRoleBindings:  bootstrappolicy.NamespaceRoleBindings(),
	}
}

// TestBootstrapPolicyMatchesUpstream checks, object for object, that the
// policy Havre creates at start is upstream's.
func TestBootstrapPolicyMatchesUpstream(t *testing.T) {
	want, err := json.MarshalIndent(upstreamPolicy(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("../../internal/auth/rbac/bootstrap/policy.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := json.MarshalIndent(bootstrap.Load(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if !bytes.Equal(got, want) {
		t.Errorf("Havre's bootstrap policy differs from upstream's: run go test ./test/rbacdiff -run TestBootstrapPolicyMatchesUpstream -update")
	}
	// And object by object, in case JSON hides a difference.
	p, up := bootstrap.Load(), upstreamPolicy()
	if len(p.ClusterRoles) != len(up.ClusterRoles) || len(p.ClusterRoleBindings) != len(up.ClusterRoleBindings) ||
		len(p.ControllerRoles) != len(up.ControllerRoles) || len(p.ControllerRoleBindings) != len(up.ControllerRoleBindings) {
		t.Fatalf("object counts differ")
	}
	for i := range up.ClusterRoles {
		if !equalJSON(t, p.ClusterRoles[i], up.ClusterRoles[i]) {
			t.Errorf("ClusterRole %s differs", up.ClusterRoles[i].Name)
		}
	}
	for i := range up.ClusterRoleBindings {
		if !equalJSON(t, p.ClusterRoleBindings[i], up.ClusterRoleBindings[i]) {
			t.Errorf("ClusterRoleBinding %s differs", up.ClusterRoleBindings[i].Name)
		}
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

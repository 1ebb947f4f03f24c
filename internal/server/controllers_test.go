package server

import "testing"

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		selection []string
		name      string
		want      bool
	}{
		{nil, "deployment", true},
		{[]string{"*"}, "deployment", true},
		{[]string{"*", "-deployment"}, "deployment", false},
		{[]string{"*", "-deployment"}, "job", true},
		{[]string{"job"}, "job", true},
		{[]string{"job"}, "deployment", false},
		{[]string{"-job", "*"}, "job", false},
	} {
		if got := enabled(tc.name, tc.selection); got != tc.want {
			t.Errorf("enabled(%q, %v) = %v, want %v", tc.name, tc.selection, got, tc.want)
		}
	}
}

func TestCheckSelection(t *testing.T) {
	if err := checkSelection([]string{"*", "-deployment", "scheduler"}); err != nil {
		t.Errorf("valid selection refused: %v", err)
	}
	if err := checkSelection([]string{"*", "-deploymnet"}); err == nil {
		t.Error("a misspelt controller name was accepted")
	}
}

func TestControllerTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range controllers {
		if seen[c.name] {
			t.Errorf("controller %q listed twice", c.name)
		}
		seen[c.name] = true
	}
	for _, name := range []string{"endpointslice-controller", "endpoints-controller", "endpointslice-mirroring-controller",
		"kubernetes-endpoints", "service-lb-controller", "persistentvolume-binder-controller", "persistentvolumeclaim-protection-controller",
		"persistentvolume-protection-controller", "ephemeral-volume-controller"} {
		if !seen[name] {
			t.Errorf("controller %q is not in the table", name)
		}
	}
}

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

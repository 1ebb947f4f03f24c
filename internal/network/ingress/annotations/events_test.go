package annotations

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/record"
)

func TestRecordWarnings(t *testing.T) {
	tests := []struct {
		name     string
		warnings []string
		want     string // "" : no Event
	}{
		{name: "none"},
		{name: "one", warnings: []string{"a"}, want: "Warning UnsupportedAnnotation a"},
		{name: "several joined", warnings: []string{"a", "b"}, want: "Warning UnsupportedAnnotation a; b"},
		{name: "truncated", warnings: []string{strings.Repeat("é", 600)}, want: "Warning UnsupportedAnnotation " + strings.Repeat("é", 510) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := record.NewFakeRecorder(10)
			_, _, warnings := New(Config{}).Parse(ingress(nil))
			RecordWarnings(rec, ingress(nil), append(warnings, tt.warnings...))
			select {
			case e := <-rec.Events:
				if e != tt.want {
					t.Errorf("event %q, want %q", e, tt.want)
				}
			default:
				if tt.want != "" {
					t.Errorf("no event, want %q", tt.want)
				}
			}
		})
	}
	RecordWarnings(nil, ingress(nil), []string{"x"}) // no recorder: no panic
}

// The Event a migrated manifest gets.
func TestRecordWarningsFromParse(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	ing := ingress(map[string]string{"configuration-snippet": "x", "mirror-target": "x", "ssl-redirect": "true"})
	_, _, warnings := New(Config{}).Parse(ing)
	RecordWarnings(rec, ing, warnings)
	want := "Warning UnsupportedAnnotation annotation nginx.ingress.kubernetes.io/configuration-snippet: snippets are never applied (raw proxy configuration is not accepted); " +
		"annotation nginx.ingress.kubernetes.io/mirror-target is not supported by Havre (ignored)"
	if e := <-rec.Events; e != want {
		t.Errorf("event\n %q\nwant\n %q", e, want)
	}
}

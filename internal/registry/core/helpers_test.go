package core

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// want is an expected validation error: its path and type.
type want struct {
	field string
	typ   field.ErrorType
}

// checkErrors fails unless errs holds exactly the wanted (field, type)
// pairs, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants ...want) {
	t.Helper()
	got := map[want]int{}
	for _, e := range errs {
		got[want{e.Field, e.Type}]++
	}
	for _, w := range wants {
		if got[w] == 0 {
			t.Errorf("missing error %s %q; got %v", w.typ, w.field, errs)
			continue
		}
		got[w]--
	}
	for w, n := range got {
		if n > 0 {
			t.Errorf("unexpected error %s %q; all: %v", w.typ, w.field, errs)
		}
	}
}

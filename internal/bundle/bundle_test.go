package bundle

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNewer(t *testing.T) {
	tests := []struct {
		ours, installed string
		want            bool
	}{
		{"v1.6.3", "v1.6.2", true},
		{"v8.7.0", "v8.0.0", true},
		{"v1.6.3", "v1.6.3", false},
		{"v1.6.2", "v1.6.3", false},
		{"v1.6.3", "", false},
		{"", "v1.6.2", false},
		{"v1.6.3", "garbage", false},
	}
	for _, tt := range tests {
		if got := Newer(tt.ours, tt.installed); got != tt.want {
			t.Errorf("Newer(%q, %q) = %v, want %v", tt.ours, tt.installed, got, tt.want)
		}
	}
}

// TestInstall: created when missing; updated only from an older bundle
// version, again after a conflict; someone else's object left alone.
func TestInstall(t *testing.T) {
	const ann = "example.com/bundle-version"
	gr := schema.GroupResource{Resource: "things"}
	older := &metav1.ObjectMeta{Name: "x", Annotations: map[string]string{ann: "v1.0.0"}}
	tests := []struct {
		name      string
		installed *metav1.ObjectMeta // nil: missing
		// meanwhile is installed by someone else between our read
		// (which finds nothing) and our create.
		meanwhile   *metav1.ObjectMeta
		conflicts   int
		wantCreates int
		wantWrites  int
	}{
		{name: "missing", wantCreates: 1},
		{name: "same version: no write, and no create either", installed: &metav1.ObjectMeta{Annotations: map[string]string{ann: "v2.0.0"}}},
		{name: "newer installed", installed: &metav1.ObjectMeta{Annotations: map[string]string{ann: "v3.0.0"}}},
		{name: "older", installed: older, wantWrites: 1},
		{name: "older, after conflicts", installed: older, conflicts: 2, wantWrites: 3},
		{name: "older, created meanwhile", meanwhile: older, wantCreates: 1, wantWrites: 1},
		{name: "someone else's", installed: &metav1.ObjectMeta{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := &metav1.ObjectMeta{Name: "x", Annotations: map[string]string{ann: "v2.0.0"}}
			installed := tt.installed.DeepCopy()
			creates, writes, conflicts := 0, 0, tt.conflicts
			err := Install(context.Background(), "Thing", ann, ours, Client[*metav1.ObjectMeta]{
				Create: func(o *metav1.ObjectMeta) error {
					creates++
					if tt.meanwhile != nil {
						installed = tt.meanwhile.DeepCopy()
					}
					if installed != nil {
						return apierrors.NewAlreadyExists(gr, "x")
					}
					installed = o.DeepCopy()
					return nil
				},
				Get: func() (*metav1.ObjectMeta, error) {
					if installed == nil {
						return nil, apierrors.NewNotFound(gr, "x")
					}
					return installed.DeepCopy(), nil
				},
				Update: func(old *metav1.ObjectMeta) error {
					writes++
					if conflicts > 0 {
						conflicts--
						return apierrors.NewConflict(gr, "x", nil)
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if creates != tt.wantCreates || writes != tt.wantWrites {
				t.Errorf("creates %d, writes %d; want %d, %d", creates, writes, tt.wantCreates, tt.wantWrites)
			}
		})
	}
}

func TestCreateOnceServed(t *testing.T) {
	notServed := apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "things"}, "")
	exists := apierrors.NewAlreadyExists(schema.GroupResource{Group: "example.com", Resource: "things"}, "one")
	for _, tc := range []struct {
		name    string
		results []error // what create returns, in turn; the last one again after
		cancel  bool    // cancel the context once the results run out
		wantErr string
		calls   int
	}{
		{name: "served at once", results: []error{nil}, calls: 1},
		{name: "served after a while", results: []error{notServed, notServed, notServed, nil}, calls: 4},
		{name: "already there", results: []error{exists}, calls: 1},
		{name: "never served", results: []error{notServed}, cancel: true, wantErr: `creating the thing: context canceled (last error: things.example.com "" not found)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := CreateOnceServed(ctx, "the thing", func(context.Context) error {
				calls++
				if calls >= len(tc.results) {
					if tc.cancel {
						cancel()
					}
					return tc.results[len(tc.results)-1]
				}
				return tc.results[calls-1]
			})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || calls != tc.calls {
				t.Fatalf("error %v after %d calls, want none after %d", err, calls, tc.calls)
			}
		})
	}
}

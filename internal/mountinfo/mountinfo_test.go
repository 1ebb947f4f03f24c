package mountinfo

import (
	"slices"
	"strings"
	"testing"
)

const table = `22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /var/lib/havre/agent/pods/a/volumes/x rw,nosuid - tmpfs tmpfs rw,size=65536k
41 22 7:0 / /var/lib/havre/volumes/with\040space rw - ext4 /dev/loop0 rw
42 22 0:36 / /var/lib/havre-other rw - tmpfs tmpfs rw
bad line without separator
`

func TestParse(t *testing.T) {
	mounts, err := Parse(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 4 {
		t.Fatalf("%d mounts, want 4: %+v", len(mounts), mounts)
	}
	if m := mounts[2]; m.Point != "/var/lib/havre/volumes/with space" || m.FSType != "ext4" || m.Source != "/dev/loop0" || m.Options != "rw" {
		t.Errorf("escaped mount: %+v", m)
	}
	tests := []struct {
		dir  string
		want []string
	}{
		{"/var/lib/havre", []string{"/var/lib/havre/agent/pods/a/volumes/x", "/var/lib/havre/volumes/with space"}},
		{"/var/lib/havre/", []string{"/var/lib/havre/agent/pods/a/volumes/x", "/var/lib/havre/volumes/with space"}},
		{"/var/lib/havre/volumes/with space", []string{"/var/lib/havre/volumes/with space"}},
		{"/nothing", nil},
	}
	for _, tt := range tests {
		if got := Under(mounts, tt.dir); !slices.Equal(got, tt.want) {
			t.Errorf("Under(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
	if !IsMountPoint(mounts, "/var/lib/havre-other/") || IsMountPoint(mounts, "/var/lib") {
		t.Error("IsMountPoint")
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\040b`, `a b`},
		{`tab\011x`, "tab\tx"},
		{`back\134slash`, `back\slash`},
		{`not\09octal`, `not\09octal`},
		{`short\04`, `short\04`},
	}
	for _, tt := range tests {
		if got := Unescape(tt.in); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

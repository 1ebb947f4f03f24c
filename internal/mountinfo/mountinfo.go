// Package mountinfo reads the kernel's table of this process's mounts
// (/proc/self/mountinfo), for the parts of the agent that mount: local
// volumes, memory-backed emptyDirs and `havre agent reset`.
package mountinfo

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Mount is one line of the table.
type Mount struct {
	// Point is where it is mounted, Source what (a device, "tmpfs", ...).
	Point, Source string
	// FSType is the filesystem type, Options the per-mount options and
	// SuperOptions the filesystem's.
	FSType, Options, SuperOptions string
}

// Read returns the mounts of this process, in the kernel's order (a later
// mount on the same point hides an earlier one).
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads a table in mountinfo's format (proc(5)).
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 3 {
			continue
		}
		out = append(out, Mount{Point: Unescape(a[4]), Options: a[5], FSType: b[0], Source: Unescape(b[1]), SuperOptions: b[2]})
	}
	return out, sc.Err()
}

// Under returns the mount points at or below dir.
func Under(mounts []Mount, dir string) []string {
	dir = filepath.Clean(dir)
	var points []string
	for _, m := range mounts {
		if m.Point == dir || strings.HasPrefix(m.Point, dir+"/") {
			points = append(points, m.Point)
		}
	}
	return points
}

// IsMountPoint reports whether something is mounted on path.
func IsMountPoint(mounts []Mount, path string) bool {
	path = filepath.Clean(path)
	for _, m := range mounts {
		if m.Point == path {
			return true
		}
	}
	return false
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, \011 for a
// tab, \012 for a newline, \134 for a backslash).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

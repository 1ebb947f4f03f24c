package agent

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The atomic writer's layout of a volume directory, as the kubelet's:
//
//	..2024_05_01_10_00_00.123456789/   the files of one version
//	..data -> ..2024_05_01_10_00_00.123456789
//	key -> ..data/key                  one link per top-level name
//
// An update writes a new version beside the old one and swaps ..data with a
// rename, so that a container reading through the links sees either version
// whole, never a mix.
const (
	dataLink    = "..data"
	dataLinkTmp = "..data_tmp"
)

// cleanPayloadPath checks a file's path in a volume: relative, without
// ".." elements, and not starting with "..".
func cleanPayloadPath(p string) (string, error) {
	if p == "" || filepath.IsAbs(p) {
		return "", configErrorf("invalid volume file path %q: must be relative", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", configErrorf("invalid volume file path %q: must not contain '..'", p)
		}
	}
	c := filepath.Clean(p)
	if strings.HasPrefix(c, "..") {
		return "", configErrorf("invalid volume file path %q: must not start with '..'", p)
	}
	return c, nil
}

// writeAtomic makes dir show exactly files, swapping versions atomically.
// It reports whether anything changed.
func writeAtomic(dir string, files []volumeFile) (bool, error) {
	payload := make(map[string]volumeFile, len(files))
	top := map[string]bool{}
	for _, f := range files {
		p, err := cleanPayloadPath(f.path)
		if err != nil {
			return false, err
		}
		f.path = p
		payload[p] = f
		top[strings.SplitN(p, "/", 2)[0]] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldVersion, _ := os.Readlink(filepath.Join(dir, dataLink))
	if oldVersion != "" && sameVersion(filepath.Join(dir, oldVersion), payload) {
		changed, err := linkTopLevel(dir, top)
		return changed, err
	}

	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := writeVersion(version, payload); err != nil {
		_ = os.RemoveAll(version)
		return false, err
	}
	tmp := filepath.Join(dir, dataLinkTmp)
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return false, err
	}
	if _, err := linkTopLevel(dir, top); err != nil {
		return true, err
	}
	// Old versions (and any left by an interrupted write) go.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") && e.IsDir() && e.Name() != filepath.Base(version) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// writeVersion writes the files of one version.
func writeVersion(version string, payload map[string]volumeFile) error {
	if err := os.Chmod(version, 0o755); err != nil {
		return err
	}
	for p, f := range payload {
		full := filepath.Join(version, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode&fs.ModePerm); err != nil {
			return err
		}
	}
	return nil
}

// sameVersion reports whether a version directory holds exactly payload.
func sameVersion(version string, payload map[string]volumeFile) bool {
	n := 0
	err := filepath.WalkDir(version, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(version, p)
		if err != nil {
			return err
		}
		f, ok := payload[rel]
		if !ok {
			return fs.ErrExist
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.mode&fs.ModePerm {
			return fs.ErrExist
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, f.data) {
			return fs.ErrExist
		}
		n++
		return nil
	})
	return err == nil && n == len(payload)
}

// linkTopLevel makes dir's visible entries exactly one link per top-level
// name, into ..data. Entries of another layout (plain files written by an
// older agent) are replaced.
func linkTopLevel(dir string, top map[string]bool) (bool, error) {
	changed := false
	for name := range top {
		p := filepath.Join(dir, name)
		want := filepath.Join(dataLink, name)
		if got, err := os.Readlink(p); err == nil && got == want {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return changed, err
		}
		if err := os.Symlink(want, p); err != nil {
			return changed, fmt.Errorf("linking %s: %w", name, err)
		}
		changed = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return changed, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || top[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

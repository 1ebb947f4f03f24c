// Package images builds the images Havre ships (the pause image, from the
// static program in ./pause) and moves images in and out of the agent's
// containerd: import of OCI or docker archives, listing, removal.
//
// It must never reach a registry: images Havre needs are built locally.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/havre/havre/internal/version"
)

// Namespace is the containerd namespace CRI keeps its images in.
const Namespace = "k8s.io"

// PauseRef is the reference of the pause image this havre runs sandboxes
// with.
func PauseRef() string { return "havre.local/pause:" + tagSafe(version.Havre) }

// tagSafe turns a version into a valid image tag.
func tagSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, v)
}

// File is one regular file of an image layer.
type File struct {
	Path string
	Mode int64
	Data []byte
}

// Spec describes a single-layer image.
type Spec struct {
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Labels     map[string]string
}

// Build returns a linux image of this machine's architecture holding
// spec's files in one layer. Timestamps are zero, so the same spec always
// gives the same image id.
func Build(spec Spec) (v1.Image, error) {
	layerTar, err := tarFiles(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.Env = spec.Env
	cf.Config.User = spec.User
	cf.Config.WorkingDir = spec.WorkingDir
	cf.Config.Labels = spec.Labels
	return mutate.ConfigFile(img, cf)
}

// tarFiles writes files, and the directories above them, as a tar stream.
func tarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var epoch time.Time
	sorted := slices.Clone(files)
	for i := range sorted {
		sorted[i].Path = strings.TrimPrefix(path.Clean("/"+sorted[i].Path), "/")
		if sorted[i].Path == "" {
			return nil, fmt.Errorf("image file %q: empty path", files[i].Path)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		p := f.Path
		var parents []string
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		slices.Reverse(parents)
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(f.Data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as a docker archive (`docker save` format, which
// containerd imports) tagged ref.
func WriteArchive(w io.Writer, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return err
	}
	return tarball.Write(tag, img, w)
}

// PauseImage is the pause image around the given static binary: /pause,
// run as the nobody user as upstream's is.
func PauseImage(binary []byte) (v1.Image, error) {
	return Build(Spec{
		Files:      []File{{Path: "/pause", Mode: 0o755, Data: binary}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		Labels:     map[string]string{"io.havre.image": "pause"},
	})
}

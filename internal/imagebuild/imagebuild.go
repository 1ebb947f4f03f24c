// Package imagebuild packs one of the project's small static Go programs
// into a single-layer container image archive (docker format, what `havre
// image import` takes). The end-to-end tests build their images with it,
// and `make run` the demo application's.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Build compiles the Go program in dir (relative to the module root, as
// "test/images/web") as a static linux binary and writes an image tagged ref
// whose only file is /<base name of dir>, its entrypoint, plus /tmp and the
// /bin links the program's APPLETS file lists. It returns the archive's
// path, <outDir>/<base>.tar.
func Build(ctx context.Context, moduleRoot, dir, ref, outDir string) (string, error) {
	return build(ctx, moduleRoot, dir, ref, outDir, nil, nil)
}

func build(ctx context.Context, moduleRoot, dir, ref, outDir string, extra func(*tar.Writer) error, env []string) (string, error) {
	base := filepath.Base(dir)
	bin := filepath.Join(outDir, base)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./"+strings.TrimPrefix(dir, "./"))
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	build.WaitDelay = 5 * time.Second
	if output, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", dir, err, output)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: base, Mode: 0o755, Size: int64(len(data))}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := writeAppletLinks(tw, filepath.Join(moduleRoot, dir), base); err != nil {
		return "", err
	}
	if extra != nil {
		if err := extra(tw); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer.Bytes())), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/" + base}
	cf.Config.Env = append([]string{"PATH=/bin:/"}, env...)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return "", err
	}
	archive := filepath.Join(outDir, base+".tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return "", err
	}
	return archive, nil
}

// writeAppletLinks adds to an image layer /tmp and, for every name listed in
// the program's APPLETS file (one a line), a link /bin/<name> to the
// program, which then acts as that command when called by that name.
func writeAppletLinks(tw *tar.Writer, dir, program string) error {
	for _, d := range []tar.Header{{Name: "tmp/", Mode: 0o1777}, {Name: "bin/", Mode: 0o755}} {
		d.Typeflag = tar.TypeDir
		if err := tw.WriteHeader(&d); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "APPLETS"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(data)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + name, Linkname: "/" + program, Mode: 0o777}); err != nil {
			return err
		}
	}
	return nil
}

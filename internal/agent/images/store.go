package images

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/havre/havre/internal/agent/images/pause"
)

// Importer loads image archives into a containerd's CRI namespace with the
// ctr tool that comes with containerd.
type Importer struct {
	// Address is containerd's socket path.
	Address string
	// Snapshotter unpacks the layers (the one CRI uses); "" lets
	// containerd choose.
	Snapshotter string
	// Ctr is the ctr binary ("ctr" from PATH when empty).
	Ctr string
}

// ctrOutputLine is what ctr prints for every image it imports.
var ctrOutputLine = regexp.MustCompile(`^unpacking (\S+) \((sha256:[0-9a-f]+)\)`)

// Import reads an OCI or docker archive from r and imports every image in
// it. It reports what it does on progress (which may be nil), and returns
// the references imported.
func (im Importer) Import(ctx context.Context, r io.Reader, progress io.Writer) ([]string, error) {
	ctr := im.Ctr
	if ctr == "" {
		ctr = "ctr"
	}
	path, err := exec.LookPath(ctr)
	if err != nil {
		return nil, fmt.Errorf("ctr (part of containerd) not found: %w", err)
	}
	args := []string{"--address", im.Address, "--namespace", Namespace, "images", "import"}
	if im.Snapshotter != "" {
		args = append(args, "--snapshotter", im.Snapshotter)
	}
	args = append(args, "-")
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = r
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Env = append(os.Environ(), "CONTAINERD_NAMESPACE="+Namespace)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("importing images: %v: %s", err, strings.TrimSpace(out.String()))
	}
	var refs []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := ctrOutputLine.FindStringSubmatch(sc.Text()); m != nil {
			refs = append(refs, m[1])
			if progress != nil {
				fmt.Fprintf(progress, "imported %s (%s)\n", m[1], m[2])
			}
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("the archive holds no image for this platform: %s", strings.TrimSpace(out.String()))
	}
	return refs, nil
}

// ImportFile imports an archive file, showing progress on w.
func (im Importer) ImportFile(ctx context.Context, file string, w io.Writer) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pr := &progressReader{r: f}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "reading %s: %s\n", file, percent(pr.n.Load(), fi.Size()))
			}
		}
	}()
	refs, err := im.Import(ctx, pr, w)
	close(done)
	<-finished
	return refs, err
}

func percent(n, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f/%.1f MB (%d%%)", float64(n)/1e6, float64(total)/1e6, n*100/total)
}

type progressReader struct {
	r io.Reader
	n atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// Image is one image the runtime holds.
type Image struct {
	ID   string
	Tags []string
	Size uint64
}

// List returns the runtime's images, sorted by their first tag.
func List(ctx context.Context, svc runtimeapi.ImageServiceClient) ([]Image, error) {
	resp, err := svc.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, img := range resp.Images {
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = img.RepoDigests
		}
		out = append(out, Image{ID: img.Id, Tags: tags, Size: img.Size})
	}
	sort.Slice(out, func(i, j int) bool { return first(out[i].Tags) < first(out[j].Tags) })
	return out, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// ErrNotFound is returned by Remove for an image the runtime does not hold.
var ErrNotFound = errors.New("image not found")

// Remove removes an image by reference or id.
func Remove(ctx context.Context, svc runtimeapi.ImageServiceClient, ref string) error {
	st, err := svc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return err
	}
	if st.Image == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	_, err = svc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: st.Image.Id}})
	return err
}

// EnsurePause makes sure the runtime holds the pause image of this havre,
// building and importing it when it is missing or differs. cacheDir keeps a
// pause binary built with the Go toolchain when none is embedded.
func EnsurePause(ctx context.Context, svc runtimeapi.ImageServiceClient, im Importer, cacheDir string) (string, error) {
	ref := PauseRef()
	bin, _, err := pause.Binary(cacheDir)
	if err != nil {
		return "", err
	}
	img, err := PauseImage(bin)
	if err != nil {
		return "", err
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	if present(ctx, svc, ref, id.String()) {
		return ref, nil
	}
	var archive bytes.Buffer
	if err := WriteArchive(&archive, ref, img); err != nil {
		return "", err
	}
	if _, err := im.Import(ctx, &archive, nil); err != nil {
		return "", fmt.Errorf("importing the pause image: %w", err)
	}
	// CRI learns of imported images from containerd's events.
	deadline := time.Now().Add(30 * time.Second)
	for !present(ctx, svc, ref, id.String()) {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the runtime does not list the imported pause image %s", ref)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return ref, nil
}

func present(ctx context.Context, svc runtimeapi.ImageServiceClient, ref, id string) bool {
	st, err := svc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	return err == nil && st.Image != nil && st.Image.Id == id
}

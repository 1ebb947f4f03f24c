package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ValidateSubPath refuses a subPath (as given, or as expanded from a
// subPathExpr) that is absolute or has a ".." component, with the
// kubelet's messages.
func ValidateSubPath(sub string) error {
	if filepath.IsAbs(sub) {
		return fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
		}
	}
	return nil
}

// resolveBeneath are the openat2 resolve flags of every lookup inside a
// volume: no component may lead out of the volume (absolute symlinks and
// ".." above it fail with EXDEV), and no /proc magic link is followed.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens path relative to dirfd without leaving dirfd's tree.
func openBeneath(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, path, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveBeneath})
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue // a rename elsewhere raced the lookup
		}
		return fd, err
	}
}

// OpenSubPath resolves sub inside the volume directory root and returns an
// O_PATH descriptor of what it names. Missing directories on the way are
// created with the mode of root (its setgid bit included, so that a
// volume given to an fsGroup stays writable by it). Symbolic links inside
// the volume are followed only while they stay inside it: a subPath that
// would resolve outside (an absolute link, a ".." above the root) is
// refused. The caller closes the descriptor.
func OpenSubPath(root, sub string) (*os.File, error) {
	if err := ValidateSubPath(sub); err != nil {
		return nil, err
	}
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening volume path %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	var st unix.Stat_t
	if err := unix.Fstat(rootFd, &st); err != nil {
		return nil, err
	}
	dirMode := st.Mode & (0o777 | unix.S_ISGID)

	clean := filepath.Clean(sub)
	if clean == "." || clean == "" {
		fd, err := unix.Open(root, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), root), nil
	}
	parts := strings.Split(clean, "/")
	escaped := func(err error) error {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("subpath %q not within volume path %q", sub, root)
		}
		if errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("subPath %q: this kernel has no openat2 (Linux 5.6 or later is needed to resolve subPaths safely)", sub)
		}
		return fmt.Errorf("subPath %q of volume path %s: %w", sub, root, err)
	}
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openBeneath(rootFd, prefix, unix.O_PATH)
		if err == nil {
			if i == len(parts)-1 {
				return os.NewFile(uintptr(fd), filepath.Join(root, clean)), nil
			}
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, escaped(err)
		}
		// Create the missing directory under its (resolved, contained)
		// parent, then give it the root's mode.
		parent := "."
		if i > 0 {
			parent = strings.Join(parts[:i], "/")
		}
		pfd, err := openBeneath(rootFd, parent, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, escaped(err)
		}
		err = unix.Mkdirat(pfd, parts[i], 0o700)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(pfd)
			return nil, escaped(err)
		}
		dfd, err := unix.Openat(pfd, parts[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(pfd)
		if err != nil {
			return nil, escaped(err)
		}
		err = unix.Fchmod(dfd, dirMode)
		unix.Close(dfd)
		if err != nil {
			return nil, escaped(err)
		}
		if i == len(parts)-1 {
			fd, err := openBeneath(rootFd, prefix, unix.O_PATH)
			if err != nil {
				return nil, escaped(err)
			}
			return os.NewFile(uintptr(fd), filepath.Join(root, clean)), nil
		}
	}
	return nil, fmt.Errorf("subPath %q: nothing to resolve", sub)
}

// BindSubPath bind-mounts what sub names inside the volume directory root
// on target (a file or a directory, made as needed), as the kubelet does
// under a pod's volume-subpaths directory: the container runtime then
// mounts target, which a container swapping a path component of the
// volume for a symbolic link can no longer redirect. A mount already on
// target is replaced. The caller unmounts target when the pod goes.
func BindSubPath(root, sub, target string) error {
	f, err := OpenSubPath(root, sub)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting the old subPath mount %s: %w", target, err)
	}
	// A target of the wrong kind (the subPath changed from a file to a
	// directory) is replaced; an empty one is what it should be.
	_ = os.Remove(target)
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(target, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else {
		t, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return err
		}
		t.Close()
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting subPath %q of %s on %s: %w", sub, root, target, err)
	}
	return nil
}

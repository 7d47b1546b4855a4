// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelPackages maps the kernel names vmtest knows to Debian meta
// packages: each depends on the current image package of its series, so
// the ABI is never pinned here (old ones leave the mirror).
var kernelPackages = map[string]string{
	"6.1":  "linux-image-cloud-amd64",      // Debian 12's own kernel
	"6.12": "linux-image-6.12-cloud-amd64", // Debian 12 backports / Debian 13
}

// Kernel is an unpacked kernel image package.
type Kernel struct {
	Name    string // as asked for: 6.1, 6.12, or a path
	Package string // the real image package, e.g. linux-image-6.1.0-56-cloud-amd64
	Image   string // the bzImage
	Modules string // lib/modules/VERSION, or "" when unknown
}

// cacheDir is where downloaded kernels are kept between runs.
func cacheDir() (string, error) {
	if d := os.Getenv("KFLOW_VMTEST_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache: %w (set KFLOW_VMTEST_CACHE)", err)
	}
	return filepath.Join(d, "kflow-vmtest"), nil
}

// findKernel returns the kernel to boot: a bzImage path as given (with
// modules from -modules), or a Debian kernel fetched into the cache.
func findKernel(name, modules string) (*Kernel, error) {
	if _, known := kernelPackages[name]; !known {
		if _, err := os.Stat(name); err != nil {
			return nil, fmt.Errorf("kernel %q: not one of %s and not a file: %w", name, knownKernels(), err)
		}
		return &Kernel{Name: name, Image: name, Modules: modules}, nil
	}
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	// One fetch at a time: go test runs packages in parallel.
	unlock, err := lockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	return fetchDebian(cache, name)
}

func knownKernels() string {
	return "6.1, 6.12"
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock kernel cache: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock kernel cache: %w", err)
	}
	return func() { f.Close() }, nil
}

// fetchDebian resolves the meta package to the current image package and
// unpacks it into the cache unless it is there already. Offline, the last
// package resolved for the series is used.
func fetchDebian(cache, name string) (*Kernel, error) {
	meta := kernelPackages[name]
	resolvedFile := filepath.Join(cache, meta+".resolved")
	pkg, rerr := resolveMeta(meta)
	if rerr != nil {
		b, err := os.ReadFile(resolvedFile)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", name, rerr)
		}
		pkg = strings.TrimSpace(string(b))
		fmt.Fprintf(os.Stderr, "vmtest: %v; using the cached %s\n", rerr, pkg)
	}
	dir := filepath.Join(cache, pkg)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		if err := download(cache, pkg, dir); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", name, err)
		}
		prune(cache, resolvedFile, pkg)
	}
	if err := os.WriteFile(resolvedFile, []byte(pkg+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	k := &Kernel{Name: name, Package: pkg}
	images, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	mods, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*"))
	if len(images) != 1 || len(mods) != 1 {
		return nil, fmt.Errorf("kernel %s: %s holds %d images and %d module trees, want one of each", name, dir, len(images), len(mods))
	}
	k.Image, k.Modules = images[0], mods[0]
	return k, nil
}

// resolveMeta returns the image package a meta package depends on.
func resolveMeta(meta string) (string, error) {
	out, err := exec.Command("apt-cache", "depends", meta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", meta, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency in %q", meta, out)
}

// download fetches pkg with apt-get and unpacks it into dir.
func download(cache, pkg, dir string) error {
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(os.Stderr, "vmtest: downloading %s\n", pkg)
	get := func() error {
		cmd := exec.Command("apt-get", "download", "-q", pkg)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download %s: %w: %s", pkg, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := get(); err != nil {
		// Stale package lists name a version the mirror dropped.
		if os.Geteuid() != 0 {
			return err
		}
		if out, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			return fmt.Errorf("%w (apt-get update: %v: %s)", err, uerr, out)
		}
		if err := get(); err != nil {
			return err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s left %d packages", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	if err := os.WriteFile(filepath.Join(root, ".complete"), nil, 0o644); err != nil {
		return err
	}
	_ = os.RemoveAll(dir)
	return os.Rename(root, dir)
}

// prune removes the image package previously resolved for the same series.
func prune(cache, resolvedFile, keep string) {
	b, err := os.ReadFile(resolvedFile)
	if err != nil {
		return
	}
	old := strings.TrimSpace(string(b))
	if old == "" || old == keep || strings.ContainsAny(old, "/") {
		return
	}
	if err := os.RemoveAll(filepath.Join(cache, old)); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "vmtest: remove old kernel %s: %v\n", old, err)
	}
}

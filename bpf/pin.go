// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// bpffsRoot is where Linux systems mount bpffs.
const bpffsRoot = "/sys/fs/bpf"

// EnsureBPFFS makes sure dir can hold pins: when dir is under /sys/fs/bpf
// and nothing is mounted there yet, it mounts bpffs there (as bpftool
// does). Anywhere else dir must already be on a bpffs mount.
func EnsureBPFFS(dir string) error {
	dir = filepath.Clean(dir)
	if err := checkBPFFS(dir); err == nil {
		return nil
	}
	if dir != bpffsRoot && !strings.HasPrefix(dir, bpffsRoot+"/") {
		return checkBPFFS(dir)
	}
	if err := os.MkdirAll(bpffsRoot, 0o755); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("pin directory %s: %w: mount bpffs on %s: %w (or pass --pin-dir \"\" to run without pinning)",
			dir, ErrNoBPFFS, bpffsRoot, err)
	}
	return checkBPFFS(dir)
}

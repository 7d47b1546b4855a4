// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// found is a flow file a scan found.
type found struct {
	path    string
	key     string
	slot    time.Time
	current bool
	size    int64
	ino     uint64 // tells a reused path from the file it held
}

// scanDir lists the flow files under dir: current and finished, in every
// layout and per-exporter directory.
func scanDir(dir, prefix string, loc *time.Location) ([]found, error) {
	var out []found
	err := flowfile.WalkFiles(dir, prefix, loc, func(p string, n flowfile.Name, info fs.FileInfo) error {
		var ino uint64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		out = append(out, found{path: p, key: exporterKey(dir, p), slot: n.Slot, current: n.Current, size: info.Size(), ino: ino})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return out, nil
}

// exporterKey is the per-exporter directory a file is in ("" without
// per-exporter files): the first path element under dir when it is an
// address or "local", as the collector names them. It does not change
// when rotation moves a file into its layout's subdirectories.
func exporterKey(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return ""
	}
	first, _, ok := strings.Cut(filepath.ToSlash(rel), "/")
	if !ok {
		return ""
	}
	if _, err := netip.ParseAddr(first); err == nil || first == "local" {
		return first
	}
	return ""
}

// readCreated reads a file's creation time from its header.
func readCreated(path string) (int64, error) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.Header().Created.UnixNano(), nil
}

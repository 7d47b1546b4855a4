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

// Source is a directory of flow files of one exporter (the collector's
// --source IDENT,IP,DIR): its files are known by Key, the exporter's
// address, wherever the directory is.
type Source struct {
	Dir string
	Key string
}

// scanDirs lists the flow files of the main directory (when not empty)
// and of the sources: current and finished, in every layout and
// per-exporter directory.
func scanDirs(main string, sources []Source, prefix string, loc *time.Location) ([]found, error) {
	dirs := sources
	if main != "" {
		dirs = append([]Source{{Dir: main}}, sources...)
	}
	var out []found
	for _, d := range dirs {
		f, err := scanDir(d.Dir, d.Key, prefix, loc)
		if err != nil {
			return nil, err
		}
		for _, x := range f {
			// A directory inside another (a source under --dir): its
			// files are its own, not the outer one's.
			if innermost(dirs, x.path) == filepath.Clean(d.Dir) {
				out = append(out, x)
			}
		}
	}
	return out, nil
}

// innermost returns the deepest of dirs that holds path.
func innermost(dirs []Source, path string) string {
	best := ""
	for _, d := range dirs {
		if under(d.Dir, path) && len(filepath.Clean(d.Dir)) > len(best) {
			best = filepath.Clean(d.Dir)
		}
	}
	return best
}

func under(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// scanDir lists the flow files under dir; key, if set, names them all,
// else exporterKey does.
func scanDir(dir, key, prefix string, loc *time.Location) ([]found, error) {
	var out []found
	err := flowfile.WalkFiles(dir, prefix, loc, func(p string, n flowfile.Name, info fs.FileInfo) error {
		var ino uint64
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		k := key
		if k == "" {
			k = exporterKey(dir, p)
		}
		out = append(out, found{path: p, key: k, slot: n.Slot, current: n.Current, size: info.Size(), ino: ino})
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

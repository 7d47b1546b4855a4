// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkpointVersion is the format of the checkpoint file.
const checkpointVersion = 1

// fileID names a flow file for good: its exporter directory (with
// per-exporter files) and the creation time in its header. Neither
// changes when the file is recovered or renamed at rotation.
type fileID struct {
	Key     string
	Created int64
}

// fileState is how far a file was shipped.
type fileState struct {
	Key     string `json:"key,omitempty"`
	Created int64  `json:"created"`
	Path    string `json:"path"`   // where it was last seen
	Offset  int64  `json:"offset"` // the next block to ship
	Index   int    `json:"index"`  // its index
	Done    bool   `json:"done,omitempty"`
	// Sent maps a server (its URL, without password) to the end of the
	// blocks sent there without an acknowledgment: those may be in
	// ClickHouse and are checked before they are sent again.
	Sent map[string]int64 `json:"sent,omitempty"`

	// Not persisted.
	current  bool  // a .current file
	size     int64 // size at the last scan
	seen     bool  // seen by the last scan
	reported bool  // its removal before shipping was reported
}

func (f *fileState) id() fileID { return fileID{f.Key, f.Created} }

// checkpoint is what the shipper persists.
type checkpoint struct {
	Version int `json:"version"`
	// Before: every file created before this (Unix ns) and not listed
	// in Files was shipped. Listing every shipped file would grow
	// without end.
	Before int64        `json:"before"`
	Files  []*fileState `json:"files"`
}

// loadCheckpoint reads the checkpoint; a missing file is an empty
// checkpoint (ship everything).
func loadCheckpoint(path string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &checkpoint{Version: checkpointVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("read checkpoint %s: version %d, want %d", path, c.Version, checkpointVersion)
	}
	return &c, nil
}

// save writes the checkpoint atomically: a temporary file, fsync,
// rename over the old one, fsync of the directory.
func (c *checkpoint) save(path string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write checkpoint: sync %s: %w", dir, err)
	}
	return nil
}

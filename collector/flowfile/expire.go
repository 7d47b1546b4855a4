// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ExpireOptions configure Expire.
type ExpireOptions struct {
	// MaxAge removes files whose slot started more than MaxAge before Now
	// (0: no age limit).
	MaxAge time.Duration
	// MaxBytes removes the oldest files until the rest total at most
	// MaxBytes (0: no size limit).
	MaxBytes int64
	// Prefix of the files considered (default DefaultPrefix). Unfinished
	// .current files and other files are never removed.
	Prefix string
	// Location the file names are in (default time.Local).
	Location *time.Location
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Removing, if set, is called with each file about to be removed,
	// while it still exists (the ClickHouse shipper checks that it was
	// shipped, and says so when it was not).
	Removing func(ExpiredFile)
}

// ExpiredFile is a file Expire removed.
type ExpiredFile struct {
	Path string
	Slot time.Time
	Size int64
}

// ExpireFiles removes finished flow files under dir (recursively, so every
// layout and per-exporter directory is covered), oldest first, like
// nfexpire: those older than maxAge, then more until the rest total at most
// maxBytes. Zero disables a limit. It returns what it removed.
func ExpireFiles(dir string, maxAge time.Duration, maxBytes int64) ([]ExpiredFile, error) {
	return Expire(dir, ExpireOptions{MaxAge: maxAge, MaxBytes: maxBytes})
}

// Expire is ExpireFiles with options. Directories left empty by a removal
// are removed too (never dir itself). It keeps going past a file it cannot
// remove and returns the errors joined.
func Expire(dir string, opts ExpireOptions) ([]ExpiredFile, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var files []ExpiredFile
	var total int64
	err := WalkFiles(dir, opts.Prefix, opts.Location, func(p string, n Name, info fs.FileInfo) error {
		if !n.Current {
			files = append(files, ExpiredFile{Path: p, Slot: n.Slot, Size: info.Size()})
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire %s: %w", dir, err)
	}
	slices.SortFunc(files, func(a, b ExpiredFile) int {
		if c := a.Slot.Compare(b.Slot); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	cutoff := opts.Now().Add(-opts.MaxAge)
	var removed []ExpiredFile
	var errs []error
	dirs := make(map[string]bool)
	for _, f := range files {
		old := opts.MaxAge > 0 && f.Slot.Before(cutoff)
		big := opts.MaxBytes > 0 && total > opts.MaxBytes
		if !old && !big {
			break // sorted oldest first: the rest are newer
		}
		if opts.Removing != nil {
			opts.Removing(f)
		}
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("expire: %w", err))
			continue
		}
		total -= f.Size
		removed = append(removed, f)
		dirs[filepath.Dir(f.Path)] = true
	}
	removeEmptyDirs(dir, dirs)
	return removed, errors.Join(errs...)
}

// removeEmptyDirs removes the given directories and their parents up to
// root while they are empty.
func removeEmptyDirs(root string, dirs map[string]bool) {
	root = filepath.Clean(root)
	for d := range dirs {
		for d = filepath.Clean(d); d != root && len(d) > len(root); d = filepath.Dir(d) {
			if os.Remove(d) != nil { // fails when not empty
				break
			}
		}
	}
}

// WalkFiles calls fn for every flow file under dir, recursively (every
// layout and per-exporter directory), finished or current, with its
// parsed name and its info. Other files are skipped, and so are files
// removed while the walk runs.
func WalkFiles(dir, prefix string, loc *time.Location, fn func(path string, n Name, info fs.FileInfo) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n, ok := ParseName(prefix, d.Name(), loc)
		if !ok {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(p, n, info)
	})
}

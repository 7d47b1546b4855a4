// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"cmp"
	"path/filepath"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// The shipper's view of the flow files: which exist, how far each was
// shipped, what retention removes, what waits.

// scan finds the flow files, updates the file list and returns the
// files not shipped whole yet, in creation order.
func (s *Shipper) scan() ([]*fileState, error) {
	found, err := scanDirs(s.opts.Dir, s.opts.Sources, s.opts.Prefix, s.opts.Location)
	if err != nil {
		return nil, err
	}
	ids := s.identify(found)
	if s.unmatched(ids) {
		// A file renamed into a subdirectory while the walk was
		// between the two can be missed once; a second walk finds it
		// (files are renamed once, at rotation). Only a file missing
		// from both is gone.
		again, err := scanDirs(s.opts.Dir, s.opts.Sources, s.opts.Prefix, s.opts.Location)
		if err != nil {
			return nil, err
		}
		found = append(found, again...)
		ids = append(ids, s.identify(again)...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.files {
		st.seen = false
	}
	clear(s.byPath)
	for i, f := range found {
		id := ids[i]
		if id == (fileID{}) {
			continue
		}
		st := s.files[id]
		if st == nil {
			if id.Created < s.cp.Before {
				continue // shipped, and forgotten
			}
			st = &fileState{Key: id.Key, Created: id.Created, Offset: -1, Sent: map[string]int64{}}
			s.files[id] = st
		}
		st.Path, st.current, st.size, st.seen = f.path, f.current, f.size, true
		s.byPath[f.path] = pathID{id, f.ino}
	}
	var pending []*fileState
	for id, st := range s.files {
		if !st.seen {
			if !st.Done && !st.reported {
				s.unshippedLocked(st, st.size-max(st.Offset, 0), "")
			}
			delete(s.files, id)
			continue
		}
		if !st.Done {
			pending = append(pending, st)
		}
	}
	slices.SortFunc(pending, func(a, b *fileState) int {
		if c := cmp.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return pending, nil
}

// pathID is what a path held at the last scan: a path is reused (a new
// .current file after a restart in the same slot), so the inode says
// whether it is still the same file.
type pathID struct {
	id  fileID
	ino uint64
}

// identify returns the identity of each file found: from the last scan
// when the path still holds the same file, else from its header (zero
// when the header cannot be read yet: a file just created).
func (s *Shipper) identify(found []found) []fileID {
	ids := make([]fileID, len(found))
	known := make([]bool, len(found))
	s.mu.Lock()
	for i, f := range found {
		if p, ok := s.byPath[f.path]; ok && p.ino == f.ino {
			ids[i], known[i] = p.id, true
		}
	}
	s.mu.Unlock()
	for i, f := range found {
		if known[i] {
			continue
		}
		if created, err := readCreated(f.path); err == nil {
			ids[i] = fileID{f.key, created}
		}
	}
	return ids
}

// unmatched reports whether a file of the list is not among ids.
func (s *Shipper) unmatched(ids []fileID) bool {
	have := make(map[fileID]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.files {
		if !have[id] {
			return true
		}
	}
	return false
}

func (s *Shipper) unshippedLocked(st *fileState, bytes int64, how string) {
	st.reported = true
	s.stats.UnshippedFiles++
	s.stats.UnshippedBytes += uint64(max(bytes, 0))
	detail := "removed before it was shipped"
	if how != "" {
		detail = how
	}
	s.event(Event{Kind: EventUnshippedRemoved, Path: st.Path, Bytes: bytes, Detail: detail})
}

// Expiring is the flow-file retention hook (server.FileSinkOptions
// .Expiring): it is called before a file is removed, and says so, in an
// event and in the stats, when the file is not shipped whole.
func (s *Shipper) Expiring(f flowfile.ExpiredFile) {
	created, err := readCreated(f.Path)
	if err != nil {
		s.mu.Lock()
		s.unshippedLocked(&fileState{Path: f.Path}, f.Size, "removed by retention; unreadable, so not known to be shipped: "+err.Error())
		s.mu.Unlock()
		return
	}
	id := fileID{s.keyOf(f.Path), created}
	s.mu.Lock()
	st := s.files[id]
	before := s.cp.Before
	var offset int64
	var index int
	if st != nil {
		offset, index = st.Offset, st.Index
	}
	s.mu.Unlock()
	switch {
	case st == nil && created < before:
		return // shipped long ago
	case st != nil && st.Done:
		return
	case st != nil && offset >= 0 && nothingAfter(f.Path, offset, index):
		return // every block shipped; the end not yet noted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == nil {
		st = &fileState{Path: f.Path, Offset: -1}
	}
	if st.reported {
		return
	}
	s.unshippedLocked(st, f.Size-max(offset, 0), "removed by retention before it was shipped")
}

// keyOf returns the key of a file by the directory it is in.
func (s *Shipper) keyOf(path string) string {
	dirs := s.opts.Sources
	if s.opts.Dir != "" {
		dirs = append([]Source{{Dir: s.opts.Dir}}, dirs...)
	}
	in := innermost(dirs, path)
	for _, d := range dirs {
		if filepath.Clean(d.Dir) == in && d.Key != "" {
			return d.Key
		}
	}
	return exporterKey(s.opts.Dir, path)
}

// nothingAfter reports whether a file has no whole block at or after off.
func nothingAfter(path string, off int64, index int) bool {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return false
	}
	defer r.Close()
	if r.SeekBlock(off, index) != nil {
		return false
	}
	_, err = r.SkipBlock()
	return err != nil
}

func firstBlock(path string) (int64, error) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.FirstBlock(), nil
}

// advanceWatermark moves the watermark up to the oldest file not shipped
// whole (at most watermarkLag ago) and forgets the files before it.
func (s *Shipper) advanceWatermark() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.opts.Now().Add(-watermarkLag).UnixNano()
	for _, st := range s.files {
		if !st.Done || len(st.Sent) > 0 {
			w = min(w, st.Created)
		}
	}
	if w <= s.cp.Before {
		return nil
	}
	s.cp.Before = w
	for id, st := range s.files {
		if st.Done && st.Created < w {
			delete(s.files, id)
			delete(s.byPath, st.Path)
		}
	}
	return s.saveLocked()
}

func (s *Shipper) saveLocked() error {
	files := make([]*fileState, 0, len(s.files))
	for _, st := range s.files {
		if st.Offset >= 0 {
			files = append(files, st)
		}
	}
	slices.SortFunc(files, func(a, b *fileState) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.Key, b.Key))
	})
	s.cp.Files = files
	return s.cp.save(s.opts.State)
}

// noteLag updates the lag: when a step found nothing to ship, everything
// written before it began is shipped. What waits is counted from the
// block headers, at most every few seconds.
func (s *Shipper) noteLag(began time.Time, files []*fileState, caughtUp bool) {
	s.mu.Lock()
	if caughtUp {
		s.stats.LagSince = began
		s.stats.LagBlocks, s.stats.LagBytes = 0, 0
		s.mu.Unlock()
		return
	}
	if s.stats.LagSince.IsZero() {
		s.stats.LagSince = began
	}
	if s.opts.Now().Sub(s.lastLag) < 5*time.Second {
		s.mu.Unlock()
		return
	}
	s.lastLag = s.opts.Now()
	type pos struct {
		path   string
		off    int64
		idx    int
		size   int64
		active bool
	}
	var todo []pos
	for _, st := range files {
		if !st.Done && st.Offset >= 0 {
			todo = append(todo, pos{st.Path, st.Offset, st.Index, st.size, true})
		}
	}
	s.mu.Unlock()
	var blocks, bytes uint64
	for _, p := range todo {
		bytes += uint64(max(p.size-p.off, 0))
		r, err := flowfile.Open(p.path, flowfile.ReaderOptions{})
		if err != nil {
			continue
		}
		if r.SeekBlock(p.off, p.idx) == nil {
			for {
				if _, err := r.SkipBlock(); err != nil {
					break
				}
				blocks++
			}
		}
		r.Close()
	}
	s.mu.Lock()
	s.stats.LagBlocks, s.stats.LagBytes = blocks, bytes
	s.mu.Unlock()
}

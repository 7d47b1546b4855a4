// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// follow reads the whole blocks of path from (off, idx), as a reader
// that follows a file being written does, and returns what it read and
// where to continue.
func follow(t *testing.T, path string, off int64, idx int) ([]flow.Record, []BlockInfo, int64, int, End) {
	t.Helper()
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if off == 0 {
		off = r.FirstBlock()
	}
	if err := r.SeekBlock(off, idx); err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	var infos []BlockInfo
	for {
		b, info, err := r.NextBlock()
		if errors.Is(err, io.EOF) {
			return recs, infos, off, idx, r.End()
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Offset != off || info.Index != idx || info.Records != len(b) {
			t.Fatalf("block %+v, expected at offset %d index %d", info, off, idx)
		}
		recs = append(recs, b...)
		infos = append(infos, info)
		off, idx = info.Next, idx+1
	}
}

// TestFollowBlocks reads a file block by block while it is written, then
// after a crash and Recover, and finds the same blocks at the same
// offsets.
func TestFollowBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nfcapd.202503140925.current")
	w, err := Create(path, WriterOptions{BlockRecords: 100})
	if err != nil {
		t.Fatal(err)
	}
	mix := newSynth(1)
	var want []flow.Record
	var got []flow.Record
	var all []BlockInfo
	var off int64
	idx := 0
	for round := 0; round < 5; round++ {
		for i := 0; i < 250; i++ {
			r := mix.Record()
			want = append(want, r)
			if err := w.Append(&r); err != nil {
				t.Fatal(err)
			}
		}
		// Two whole blocks are written; 50 records wait in the writer.
		recs, infos, o, n, end := follow(t, path, off, idx)
		if end.Kind != EndTruncated {
			t.Fatalf("round %d: end %v, want truncated (being written)", round, end)
		}
		got, all, off, idx = append(got, recs...), append(all, infos...), o, n
		if len(got) != 250*round+200 {
			t.Fatalf("round %d: %d records read, %d written", round, len(got), len(want))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		recs, infos, off, idx, _ = follow(t, path, off, idx)
		got, all = append(got, recs...), append(all, infos...)
	}
	checkRecords(t, got, want)

	// SkipBlock sees the same blocks without decoding them.
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		info, err := r.SkipBlock()
		if errors.Is(err, io.EOF) {
			if i != len(all) {
				t.Fatalf("SkipBlock saw %d blocks, want %d", i, len(all))
			}
			break
		}
		if err != nil || info != all[i] {
			t.Fatalf("SkipBlock %d: %+v %v, want %+v", i, info, err, all[i])
		}
	}
	r.Close()

	// A crash: the file is cut inside its last block, then recovered.
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	if _, err := Recover(path); err != nil {
		t.Fatal(err)
	}
	again, infos, _, _, end := follow(t, path, 0, 0)
	if end.Kind != EndClean {
		t.Fatalf("recovered file: end %v", end)
	}
	if len(infos) != len(all)-1 {
		t.Fatalf("recovered file: %d blocks, want %d (the last cut)", len(infos), len(all)-1)
	}
	for i := range infos {
		if infos[i] != all[i] {
			t.Fatalf("block %d moved: %+v, was %+v", i, infos[i], all[i])
		}
	}
	checkRecords(t, again, want[:len(again)])
	_ = w.Close() // its file is gone under it: the error does not matter
}

// TestNextBlockCorrupt skips a corrupt block and continues.
func TestNextBlockCorrupt(t *testing.T) {
	mix := newSynth(2)
	var recs []flow.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, mix.Record())
	}
	b := writeBytes(t, recs, WriterOptions{BlockRecords: 100})
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	first, infos, _, _, _ := follow(t, path, 0, 0)
	checkRecords(t, first, recs)
	// Flip a byte in the second block's payload.
	b[infos[1].Offset+sectionHeaderLen+5] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []flow.Record
	var corrupt int
	for {
		blk, _, err := r.NextBlock()
		if errors.Is(err, io.EOF) {
			break
		}
		var ce *CorruptBlockError
		if errors.As(err, &ce) {
			corrupt++
			if ce.Offset != infos[1].Offset {
				t.Errorf("corrupt block at %d, want %d", ce.Offset, infos[1].Offset)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, blk...)
	}
	if corrupt != 1 || r.End().Kind != EndClean {
		t.Fatalf("%d corrupt blocks, end %v", corrupt, r.End())
	}
	checkRecords(t, got, append(append([]flow.Record(nil), recs[:100]...), recs[200:]...))
}

// TestNextBlockAux reads a file with auxiliary sections block by block:
// the sections are stepped over.
func TestNextBlockAux(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	w, err := Create(path, WriterOptions{BlockRecords: 64, Aux: func() []AuxBuilder { return []AuxBuilder{&countAux{}} }})
	if err != nil {
		t.Fatal(err)
	}
	mix := newSynth(3)
	var want []flow.Record
	for i := 0; i < 300; i++ {
		r := mix.Record()
		want = append(want, r)
		if err := w.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, infos, _, _, end := follow(t, path, 0, 0)
	if end.Kind != EndClean || len(infos) != 5 {
		t.Fatalf("end %v after %d blocks, want clean after 5", end, len(infos))
	}
	checkRecords(t, got, want)
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; ; n++ {
		if _, err := r.SkipBlock(); err != nil {
			break
		}
	}
	if n != 5 {
		t.Errorf("SkipBlock counted %d blocks, want 5", n)
	}
}

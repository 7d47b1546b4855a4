// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// blockEnds returns the file offset after each whole block and the records
// in the file up to it.
func blockEnds(t *testing.T, b []byte) (ends []int64) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		if r.i == 1 {
			ends = append(ends, r.pos)
		}
	}
	return ends
}

// TestTruncatedEveryLength cuts a file at every length and checks that the
// reader returns exactly the records of the whole blocks before the cut.
func TestTruncatedEveryLength(t *testing.T) {
	const per = 7
	recs := newSynth(3).Records(60)
	b := writeBytes(t, recs, WriterOptions{BlockRecords: per})
	ends := blockEnds(t, b)
	if len(ends) != 9 {
		t.Fatalf("%d blocks, want 9", len(ends))
	}
	hdrLen := int64(len(appendHeader(nil, Header{})))
	for n := int64(0); n <= int64(len(b)); n++ {
		r, err := NewReader(bytes.NewReader(b[:n]), n, ReaderOptions{})
		if n < hdrLen {
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("cut at %d: NewReader error %v, want ErrTruncated", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		whole := 0
		for whole < len(ends) && ends[whole] <= n {
			whole++
		}
		var got []flow.Record
		for r.Next() {
			got = append(got, *r.Record())
		}
		if err := r.Err(); err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		checkRecords(t, got, recs[:min(whole*per, len(recs))])
		e := r.End()
		wantKind := EndTruncated
		if n == int64(len(b)) {
			wantKind = EndClean
		}
		if e.Kind != wantKind || e.Blocks != whole || e.Corrupt != 0 {
			t.Fatalf("cut at %d: end %+v (%v), want kind %d after %d blocks", n, e, e, wantKind, whole)
		}
		if _, ok := r.Summary(); ok != (n == int64(len(b))) {
			t.Fatalf("cut at %d: summary present = %v", n, ok)
		}
	}
}

func TestCorruptByteDetected(t *testing.T) {
	const per = 50
	recs := newSynth(4).Records(200)
	b := writeBytes(t, recs, WriterOptions{BlockRecords: per})
	ends := blockEnds(t, b)
	start1, end1 := ends[0], ends[1] // block 1
	for off := start1; off < end1; off++ {
		c := bytes.Clone(b)
		c[off] ^= 0x5a
		r, err := NewReader(bytes.NewReader(c), int64(len(c)), ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []flow.Record
		for r.Next() {
			got = append(got, *r.Record())
		}
		var ce *CorruptBlockError
		if !errors.As(r.Err(), &ce) || !errors.Is(r.Err(), ErrCorrupt) {
			t.Fatalf("byte %d: err %v, want a corrupt block", off, r.Err())
		}
		if ce.Index != 1 || ce.Offset != start1 {
			t.Fatalf("byte %d: %v, want block 1 at offset %d", off, ce, start1)
		}
		checkRecords(t, got, recs[:per])
		// Next resumes after the corrupt block.
		for r.Next() {
			got = append(got, *r.Record())
		}
		if r.Err() != nil {
			t.Fatalf("byte %d: after resume: %v", off, r.Err())
		}
		want := append(append([]flow.Record(nil), recs[:per]...), recs[2*per:]...)
		checkRecords(t, got, want)
		if e := r.End(); e.Kind != EndClean || e.Corrupt != 1 || e.Blocks != 4 {
			t.Fatalf("byte %d: end %+v", off, e)
		}
		// SkipCorrupt reads through and lists the block.
		got, r = readBytes(t, c, ReaderOptions{SkipCorrupt: true})
		if r.Err() != nil || len(r.Corrupt()) != 1 || r.Corrupt()[0].Index != 1 {
			t.Fatalf("byte %d: skip: err %v corrupt %v", off, r.Err(), r.Corrupt())
		}
		checkRecords(t, got, want)
	}
}

// TestCorruptLengthResync damages a block's length field so that the reader
// must find the next block by its header.
func TestCorruptLengthResync(t *testing.T) {
	const per = 50
	recs := newSynth(5).Records(200)
	b := writeBytes(t, recs, WriterOptions{BlockRecords: per})
	ends := blockEnds(t, b)
	c := bytes.Clone(b)
	c[ends[0]+7] = 0x7f // block 1 length: 2 GiB
	got, r := readBytes(t, c, ReaderOptions{SkipCorrupt: true})
	if r.Err() != nil || len(r.Corrupt()) != 1 || r.Corrupt()[0].Offset != ends[0] {
		t.Fatalf("err %v corrupt %v", r.Err(), r.Corrupt())
	}
	checkRecords(t, got, append(append([]flow.Record(nil), recs[:per]...), recs[2*per:]...))
	if e := r.End(); e.Kind != EndClean {
		t.Fatalf("end %v", e)
	}
}

// crashFile writes recs with a writer that is never closed, as a crash
// leaves it, plus junk of a torn block write.
func crashFile(t *testing.T, path string, recs []flow.Record, per int, junk []byte) {
	t.Helper()
	w, err := Create(path, WriterOptions{BlockRecords: per})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	f := w.w.(*os.File)
	if _, err := f.Write(junk); err != nil {
		t.Fatal(err)
	}
	f.Close() // abandon: no Flush, no Close
}

func TestRecover(t *testing.T) {
	const per = 100
	recs := newSynth(6).Records(1050) // 10 whole blocks, 50 records buffered and lost
	full := writeBytes(t, recs[:1000], WriterOptions{BlockRecords: per})
	fe := blockEnds(t, full)
	torn := full[fe[0] : fe[0]+(fe[1]-fe[0])/2] // the first half of a block
	for name, junk := range map[string][]byte{"none": nil, "torn": torn, "zeros": make([]byte, 5000)} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kflow.current.202501010000")
			crashFile(t, path, recs, per, junk)
			res, err := Recover(path)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyClean || res.End.Kind != EndTruncated || res.End.Blocks < 10 || res.Cut != int64(len(junk)) {
				t.Fatalf("result %+v", res)
			}
			r, err := Open(path, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []flow.Record
			for r.Next() {
				got = append(got, *r.Record())
			}
			if r.Err() != nil || r.End().Kind != EndClean {
				t.Fatalf("err %v end %v", r.Err(), r.End())
			}
			checkRecords(t, got, recs[:1000])
			sum, ok := r.Summary()
			if !ok || sum.Total.Flows != 1000 || sum.Blocks != 10 || !summaryEqual(sum, res.Summary) {
				t.Fatalf("summary %+v", sum)
			}
			// A second Recover leaves the file alone.
			res, err = Recover(path)
			if err != nil || !res.AlreadyClean {
				t.Fatalf("second recover: %+v %v", res, err)
			}
		})
	}
	t.Run("header", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kflow.current.202501010000")
		if err := os.WriteFile(path, []byte(fileMagic[:5]), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Recover(path); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Next() || r.End().Kind != EndClean {
			t.Fatalf("end %v", r.End())
		}
	})
	t.Run("not a flow file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x")
		os.WriteFile(path, []byte("hello"), 0o644)
		if _, err := Recover(path); !errors.Is(err, ErrNotFlowFile) {
			t.Fatalf("err %v", err)
		}
	})
}

// failFile is an in-memory file whose writes fail once limit bytes are
// reached, writing what fits first (as a full disk does).
type failFile struct {
	buf   []byte
	pos   int64
	limit int64
	trunc bool // supports Truncate and Seek
}

var errDiskFull = errors.New("no space left on device")

func (f *failFile) Write(p []byte) (int, error) {
	room := max(0, min(int64(len(p)), f.limit-f.pos))
	f.buf = append(f.buf[:f.pos], p[:room]...)
	f.pos += room
	if room < int64(len(p)) {
		return int(room), errDiskFull
	}
	return len(p), nil
}

type truncFile struct{ *failFile }

func (f truncFile) Truncate(n int64) error { f.buf = f.buf[:n]; return nil }
func (f truncFile) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, errors.New("unsupported")
	}
	f.pos = off
	return off, nil
}

func TestWriterDiskFull(t *testing.T) {
	const per = 100
	recs := newSynth(8).Records(1000)
	ff := &failFile{limit: 5000}
	w, err := NewWriter(truncFile{ff}, WriterOptions{BlockRecords: per, MaxPending: 300})
	if err != nil {
		t.Fatal(err)
	}
	var failures, rejected int
	var stored []flow.Record
	for i := range recs {
		if i == 600 {
			ff.limit = 1 << 30 // space freed
			if err := w.Flush(); err != nil {
				t.Fatalf("flush after freeing space: %v", err)
			}
		}
		err := w.Append(&recs[i])
		switch {
		case errors.Is(err, ErrRejected):
			rejected++
			continue
		case err != nil:
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("append %d: %v", i, err)
			}
			failures++
		}
		stored = append(stored, recs[i])
	}
	if failures == 0 || rejected == 0 {
		t.Fatalf("failures %d rejected %d: the test did not fill the disk", failures, rejected)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, r := readBytes(t, ff.buf, ReaderOptions{})
	if r.Err() != nil || r.End().Kind != EndClean {
		t.Fatalf("err %v end %v", r.Err(), r.End())
	}
	checkRecords(t, got, stored)
	if len(stored)+rejected != len(recs) {
		t.Fatalf("stored %d + rejected %d != %d", len(stored), rejected, len(recs))
	}
}

func TestWriterBroken(t *testing.T) {
	const per = 100
	recs := newSynth(9).Records(250)
	ff := &failFile{limit: 3000}
	w, err := NewWriter(ff, WriterOptions{BlockRecords: per}) // cannot truncate
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	for i := range recs {
		err := w.Append(&recs[i])
		if errors.Is(err, ErrRejected) {
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("append %d: %v", i, err)
			}
			break
		}
		stored++
	}
	if err := w.Close(); !errors.Is(err, ErrBroken) {
		t.Fatalf("close: %v", err)
	}
	// The file is readable up to its whole blocks; the rest is Unwritten.
	got, r := readBytes(t, ff.buf, ReaderOptions{})
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	un := w.Unwritten()
	checkRecords(t, append(got, un...), recs[:stored])
}

// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// EndKind says how a file ended.
type EndKind int

const (
	// EndUnknown: the reader has not reached the end yet.
	EndUnknown EndKind = iota
	// EndClean: the file has its summary and footer (closed cleanly).
	EndClean
	// EndTruncated: the file ends without a valid summary, after its last
	// whole block (a crash, or a writer still writing).
	EndTruncated
)

// End describes how a file ended.
type End struct {
	Kind EndKind
	// Blocks is the number of whole blocks, readable or corrupt.
	Blocks int
	// Corrupt is how many of them failed a check.
	Corrupt int
	// Offset is where the whole blocks end (where the summary starts in a
	// clean file).
	Offset int64
	// Trailing is the number of bytes after Offset that are not a whole
	// block (or, for a clean file, the summary and footer).
	Trailing int64
}

func (e End) String() string {
	switch e.Kind {
	case EndClean:
		return fmt.Sprintf("closed cleanly after %d blocks", e.Blocks)
	case EndTruncated:
		if e.Blocks == 0 {
			return fmt.Sprintf("truncated before the first block (%d trailing bytes)", e.Trailing)
		}
		return fmt.Sprintf("truncated after block %d (%d trailing bytes)", e.Blocks-1, e.Trailing)
	}
	return "end not reached"
}

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// SkipCorrupt makes Next skip corrupt blocks instead of stopping at
	// them; Corrupt lists what was skipped.
	SkipCorrupt bool
}

// Reader reads the records of a flow file. It never trusts the file: every
// length is bounded and every block checksummed. It is not safe for
// concurrent use.
//
//	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
//	for r.Next() {
//		rec := r.Record()
//	}
//	err = r.Err()
//
// When Next stops at a corrupt block, Err returns a *CorruptBlockError and
// calling Next again resumes with the following block. A file cut short is
// not an error: Next returns false after the last whole block and End says
// where the file ended.
type Reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer
	opts   ReaderOptions
	header Header
	dec    *zstd.Decoder
	bd     blockDecoder

	pos         int64 // next section
	block       int   // index of the next block
	lastGoodEnd int64 // end of the last readable block (or header)
	good        int   // readable blocks
	recs        []flow.Record
	i           int
	cur         *flow.Record
	err         error
	done        bool
	end         End
	summary     *Summary
	aux         []auxRef // auxiliary sections, from the summary
	dataStart   int64    // end of the header
	corrupt     []CorruptBlockError
	hbuf        [sectionHeaderLen]byte
	payload     []byte
	raw         []byte
	scan        []byte // resync buffer
	closed      bool
	last        BlockInfo // the block nextBlock read last
}

// Open opens a flow file for reading.
func Open(path string, opts ReaderOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open flow file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open flow file: %w", err)
	}
	r, err := NewReader(f, st.Size(), opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open flow file %s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads a flow file of size bytes from ra. It reads and checks
// the header, and loads the summary if the file was closed cleanly.
func NewReader(ra io.ReaderAt, size int64, opts ReaderOptions) (*Reader, error) {
	r := &Reader{ra: ra, size: size, opts: opts}
	var fixed [headerFixed]byte
	if err := r.readAt(fixed[:], 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	n, err := parseHeaderFixed(fixed[:])
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	hdr := make([]byte, headerFixed+n+4)
	if err := r.readAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if r.header, err = parseHeader(hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	r.pos = int64(len(hdr))
	r.lastGoodEnd, r.dataStart = r.pos, r.pos
	r.loadSummary()
	return r, nil
}

// readAt reads exactly len(b) bytes at off; a short file is ErrTruncated.
func (r *Reader) readAt(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > r.size {
		return ErrTruncated
	}
	n, err := r.ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return ErrTruncated
	}
	return err
}

// loadSummary reads the summary through the footer, if the file has one.
func (r *Reader) loadSummary() {
	var foot [footerLen]byte
	if r.size < r.pos+sectionHeaderLen+footerLen || r.readAt(foot[:], r.size-footerLen) != nil {
		return
	}
	off, ok := parseFooter(foot[:])
	if !ok || off < r.pos {
		return
	}
	if s, _, aux, ok := r.readSummaryAt(off); ok {
		r.summary, r.aux = &s, aux
	}
}

// readSummaryAt reads a summary section at off that must end with a footer
// at the end of the file.
func (r *Reader) readSummaryAt(off int64) (Summary, int64, []auxRef, bool) {
	var h [sectionHeaderLen]byte
	if r.readAt(h[:], off) != nil {
		return Summary{}, 0, nil, false
	}
	s, ok := parseSectionHeader(h[:])
	if !ok || s.magic != summaryMagic || s.sane() != "" {
		return Summary{}, 0, nil, false
	}
	end := off + sectionHeaderLen + int64(s.length)
	if end+footerLen != r.size {
		return Summary{}, 0, nil, false
	}
	b := make([]byte, int(s.length)+footerLen)
	if r.readAt(b, end-int64(s.length)) != nil || crc(b[:s.length]) != s.payloadCRC {
		return Summary{}, 0, nil, false
	}
	if foff, ok := parseFooter(b[s.length:]); !ok || foff != off {
		return Summary{}, 0, nil, false
	}
	sum, aux, err := parseSummary(b[:s.length], r.header.Version)
	for _, a := range aux {
		if a.off < r.dataStart || a.off >= off {
			return Summary{}, 0, nil, false
		}
	}
	return sum, end, aux, err == nil
}

// decoder makes the reader's zstd decoder.
func (r *Reader) decoder() error {
	if r.dec != nil {
		return nil
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxBlockBytes),
		zstd.WithDecoderMaxWindow(MaxBlockBytes))
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	r.dec = dec
	return nil
}

// Header returns the file header.
func (r *Reader) Header() Header { return r.header }

// Summary returns the summary stored in the file; ok is false when the file
// was not closed cleanly (Recover can finish it).
func (r *Reader) Summary() (s Summary, ok bool) {
	if r.summary == nil {
		return Summary{}, false
	}
	return *r.summary, true
}

// Next advances to the next record.
func (r *Reader) Next() bool {
	for {
		if r.i < len(r.recs) {
			r.cur = &r.recs[r.i]
			r.i++
			return true
		}
		r.recs, r.i, r.cur = r.recs[:0], 0, nil
		if r.done || r.closed {
			return false
		}
		if r.err != nil {
			var ce *CorruptBlockError
			if !errors.As(r.err, &ce) {
				return false
			}
			r.err = nil // resume after the corrupt block
		}
		if err := r.nextBlock(); err != nil {
			var ce *CorruptBlockError
			if errors.As(err, &ce) {
				r.corrupt = append(r.corrupt, *ce)
				r.end.Corrupt++
				if r.opts.SkipCorrupt {
					continue
				}
			}
			r.err = err
			return false
		}
	}
}

// Record returns the current record. It stays valid until the next call to
// Next.
func (r *Reader) Record() *flow.Record { return r.cur }

// Err returns the error that stopped Next: a *CorruptBlockError (Next may
// be called again to continue), or a read error. A truncated file is not an
// error; see End.
func (r *Reader) Err() error { return r.err }

// End says how the file ended, once Next has returned false with a nil Err.
func (r *Reader) End() End { return r.end }

// Corrupt lists the corrupt blocks met so far.
func (r *Reader) Corrupt() []CorruptBlockError { return r.corrupt }

// Close releases the reader (and closes the file if Open opened it).
func (r *Reader) Close() error {
	if r.closed {
		return fmt.Errorf("close: %w", ErrClosed)
	}
	r.closed = true
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

func (r *Reader) finish(kind EndKind, off int64) {
	r.done = true
	r.end.Kind = kind
	r.end.Blocks = r.block
	r.end.Offset = off
	if kind == EndTruncated {
		r.end.Trailing = r.size - off
	}
}

func (r *Reader) corruptAt(idx int, off int64, format string, args ...any) error {
	return &CorruptBlockError{Index: idx, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// nextBlock reads the section at r.pos. It returns nil with r.recs filled,
// nil with r.done set at the end, or an error.
func (r *Reader) nextBlock() error {
	start := r.pos
	if r.size-start < sectionHeaderLen {
		r.finish(EndTruncated, start)
		return nil
	}
	if err := r.readAt(r.hbuf[:], start); err != nil {
		return fmt.Errorf("read block %d at offset %d: %w", r.block, start, err)
	}
	s, ok := parseSectionHeader(r.hbuf[:])
	reason := "bad block header"
	if ok {
		if why := s.sane(); why != "" {
			ok, reason = false, why
		}
	}
	if !ok {
		next, err := r.resync(start + 1)
		if err != nil {
			return fmt.Errorf("read after offset %d: %w", start, err)
		}
		if next < 0 {
			// Nothing valid follows: a torn write at the end.
			r.finish(EndTruncated, start)
			return nil
		}
		idx := r.block
		r.block++
		r.pos = next
		return r.corruptAt(idx, start, "%s; skipped %d bytes", reason, next-start)
	}
	if s.magic == auxMagic {
		// Auxiliary sections are read by name (Aux), not as records.
		end := start + sectionHeaderLen + int64(s.length)
		if end > r.size {
			r.finish(EndTruncated, start)
			return nil
		}
		r.pos = end
		return nil
	}
	if s.magic == summaryMagic {
		sum, end, aux, ok := r.readSummaryAt(start)
		if ok {
			r.summary, r.aux = &sum, aux
			r.finish(EndClean, start)
			r.end.Trailing = r.size - end - footerLen
		} else {
			r.finish(EndTruncated, start)
		}
		return nil
	}
	end := start + sectionHeaderLen + int64(s.length)
	if end > r.size {
		r.finish(EndTruncated, start)
		return nil
	}
	if cap(r.payload) < int(s.length) {
		r.payload = make([]byte, s.length)
	}
	p := r.payload[:s.length]
	if err := r.readAt(p, start+sectionHeaderLen); err != nil {
		return fmt.Errorf("read block %d at offset %d: %w", r.block, start, err)
	}
	idx := r.block
	r.block++
	r.pos = end
	if got := crc(p); got != s.payloadCRC {
		return r.corruptAt(idx, start, "payload checksum %08x, want %08x", got, s.payloadCRC)
	}
	if err := r.decoder(); err != nil {
		return err
	}
	raw, err := r.dec.DecodeAll(p, r.raw[:0])
	if err != nil {
		return r.corruptAt(idx, start, "decompress: %v", err)
	}
	r.raw = raw
	if len(raw) != int(s.rawLength) {
		return r.corruptAt(idx, start, "decompressed %d bytes, want %d", len(raw), s.rawLength)
	}
	recs, err := r.bd.decode(raw, int(s.count), r.recs[:0], AllFields)
	if err != nil {
		return r.corruptAt(idx, start, "decode: %v", err)
	}
	r.recs = recs
	r.lastGoodEnd = end
	r.good++
	r.last = BlockInfo{Index: idx, Offset: start, Next: end, Records: int(s.count), CRC: s.payloadCRC}
	return nil
}

// resync finds the next valid section header at or after from; -1 if none.
func (r *Reader) resync(from int64) (int64, error) {
	const chunk = 64 << 10
	if r.scan == nil {
		r.scan = make([]byte, min(chunk, r.size)+sectionHeaderLen)
	}
	buf := r.scan
	for off := from; off+sectionHeaderLen <= r.size; off += chunk {
		b := buf[:min(int64(len(buf)), r.size-off)]
		if err := r.readAt(b, off); err != nil {
			return 0, err
		}
		lim := min(chunk, len(b))
		for i := 0; i < lim && i+sectionHeaderLen <= len(b); {
			j := bytes.IndexByte(b[i:lim], 'K')
			if j < 0 {
				break
			}
			i += j
			if i+sectionHeaderLen > len(b) {
				break
			}
			if s, ok := parseSectionHeader(b[i : i+sectionHeaderLen]); ok && s.sane() == "" {
				return off + int64(i), nil
			}
			i++
		}
	}
	return -1, nil
}

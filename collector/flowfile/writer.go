// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Level is a zstd compression level for blocks.
type Level int

const (
	// LevelDefault is the level used when none is chosen: zstd "fastest".
	// On 32768-record blocks of distinct flows (the collector benchmarks'
	// stream) it stores 19.4 bytes a flow against "default"'s 18.6, on
	// the synthetic mix 13.8 against 13.1; the collector then spends
	// about 11 % less CPU per flow through its sockets, holds 1.2 MB less,
	// and queries decode blocks about 20 % faster.
	LevelDefault Level = iota
	LevelFastest
	LevelBalanced // zstd "default"
	LevelBetter   // zstd "better"
	LevelBest
)

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelDefault, LevelFastest:
		return zstd.SpeedFastest
	case LevelBalanced:
		return zstd.SpeedDefault
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedDefault
}

// encoderWindow is the zstd window of block compression. The encoder's
// default (8 MiB) made it hold about 13 MB for a block of 1 MB; a block's
// matches are near each other (within a column), so that 512 KiB
// compressed blocks of distinct flows and of the synthetic mix to the
// same byte, with 5.5 MB. 128 KiB (zstd's block size) holds 384 KiB
// less history and compresses as well at every level: 2^17 records of
// the mix and of distinct flows, fastest to best, came out smaller by
// 0.00–0.07 %, but distinct flows at best, 0.08 % larger (December
// 2026). 32 KiB loses.
const encoderWindow = 128 << 10

// WriterOptions configure a Writer. The zero value is usable.
type WriterOptions struct {
	// Ident names the writer in the file header (at most MaxIdentLen
	// bytes), like nfcapd's ident.
	Ident string
	// BlockRecords is the number of records after which a block is cut
	// (default DefaultBlockRecords, at most MaxBlockRecords).
	BlockRecords int
	// MaxPending bounds the records held in memory while block writes
	// fail (default 4 × BlockRecords). Past it Append rejects records.
	MaxPending int
	// Level is the zstd level of blocks.
	Level Level
	// Created is the creation time written to the header (default now).
	Created time.Time
	// SyncOnFlush makes Flush fsync the file after writing.
	SyncOnFlush bool
	// Aux, when set, returns the builders of the auxiliary sections the
	// file gets when closed (called once per file; Recover calls it too,
	// to rebuild them from the readable blocks of a crashed file).
	Aux func() []AuxBuilder

	// A Rotator's writers share one zstd encoder, and a new file takes
	// over the block buffers of the file it follows (see Rotator.rotate).
	share *zstdShare
	reuse *blockState
}

// zstdShare is a zstd encoder the writers of a Rotator take in turn: a
// rotation's new file and the closing of the last one would otherwise
// each hold one.
type zstdShare struct {
	mu  sync.Mutex
	enc *zstd.Encoder
}

// blockState is what a writer encodes blocks with: handed from a file
// to the next at a rotation, it is not allocated (and grown) again.
type blockState struct {
	benc           *blockEncoder
	buf            []byte
	lastRaw, lastZ int
}

// newZstdEncoder returns the block encoder of a writer.
func newZstdEncoder(level Level) (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level.zstd()),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(encoderWindow))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return enc, nil
}

// Writer writes one flow file. It is not safe for concurrent use.
//
// Records are encoded into the current block as they are appended (the
// writer keeps no copy of them), and the block is compressed and written
// when it holds BlockRecords records or on Flush. When a block write fails
// (a full disk), the writer cuts the file back to its last whole block,
// keeps the block (encoded) and returns the error; the next Append that
// fills a block, Flush or Close retries. If the file cannot be cut back, the writer is broken (ErrBroken):
// it accepts no more records, and Unwritten returns the records it held. No
// record for which Append returned nil is dropped silently: it is either in
// the file or returned by Unwritten after Close.
type Writer struct {
	w      io.Writer
	closer io.Closer // nil when the caller owns w
	header Header
	opts   WriterOptions
	enc    *zstd.Encoder
	encMu  *sync.Mutex   // held while enc is used
	ownEnc bool          // enc is the writer's own, closed with it
	benc   *blockEncoder // the current block: benc.n records
	blk    *Summarizer   // the current block's records
	// held are full blocks whose write failed, in order, before the
	// current one; heldN counts their records.
	held  []heldBlock
	heldN int
	off   int64 // end of the last whole block
	sum   *Summarizer
	buf   []byte // a section header and a compressed payload
	// The last block's payload, uncompressed and compressed: the next
	// block's buffer is sized at its ratio.
	lastRaw, lastZ int
	// aux are fed each record as it is appended. A file that ends
	// without some of the records appended (a write failure) gets no
	// auxiliary sections: they would count records it does not hold.
	aux     []AuxBuilder
	static  map[string][]byte // SetAux
	reports reportTable       // Report
	err     error             // non-nil once broken; wraps ErrBroken
	closed  bool
}

// Create creates the flow file path (it must not exist) and writes its
// header.
func Create(path string, opts WriterOptions) (*Writer, error) {
	// Read and write: auxiliary sections are built from the blocks read
	// back when the file is closed.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create flow file: %w", err)
	}
	w, err := newWriter(f, f, opts)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create flow file %s: %w", path, err)
	}
	return w, nil
}

// NewWriter writes a flow file to w, starting with its header. Close does
// not close w. If w also has Truncate(int64) error and
// Seek(int64, int) (int64, error) (an *os.File does), a failed block write is
// cut back and the writer stays usable; otherwise a partial write breaks it.
// If w has Sync() error, Close calls it.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	return newWriter(w, nil, opts)
}

func newWriter(w io.Writer, c io.Closer, opts WriterOptions) (*Writer, error) {
	if len(opts.Ident) > MaxIdentLen {
		return nil, fmt.Errorf("ident of %d bytes exceeds %d", len(opts.Ident), MaxIdentLen)
	}
	if opts.BlockRecords <= 0 {
		opts.BlockRecords = DefaultBlockRecords
	}
	if opts.BlockRecords > MaxBlockRecords {
		return nil, fmt.Errorf("block records %d exceeds %d", opts.BlockRecords, MaxBlockRecords)
	}
	if opts.MaxPending < opts.BlockRecords {
		opts.MaxPending = 4 * opts.BlockRecords
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now()
	}
	wr := &Writer{
		w:      w,
		closer: c,
		header: Header{Version: Version, Created: opts.Created.UTC(), Ident: opts.Ident},
		opts:   opts,
		benc:   &blockEncoder{blockRecords: opts.BlockRecords},
		sum:    NewSummarizer(),
		blk:    NewSummarizer(),
	}
	if sh := opts.share; sh != nil {
		wr.enc, wr.encMu = sh.enc, &sh.mu
	} else {
		enc, err := newZstdEncoder(opts.Level)
		if err != nil {
			return nil, err
		}
		wr.enc, wr.encMu, wr.ownEnc = enc, new(sync.Mutex), true
	}
	if st := opts.reuse; st != nil && st.benc.blockRecords == opts.BlockRecords {
		wr.benc, wr.buf, wr.lastRaw, wr.lastZ = st.benc, st.buf, st.lastRaw, st.lastZ
	}
	wr.opts.share, wr.opts.reuse = nil, nil
	if opts.Aux != nil {
		wr.aux = opts.Aux()
	}
	hdr := appendHeader(nil, wr.header)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	wr.off = int64(len(hdr))
	return wr, nil
}

// Header returns the header written to the file.
func (w *Writer) Header() Header { return w.header }

// Append adds a copy of r to the current block, writing the block when it
// holds BlockRecords records.
//
// Append returns nil when the record is held by the writer. An error
// wrapping ErrRejected means the record was NOT stored (invalid record,
// MaxPending records buffered after write failures, broken or closed
// writer): the caller must count it as dropped. Any other error reports a
// failed block write: the record is still held and will be retried.
func (w *Writer) Append(r *flow.Record) error {
	switch {
	case w.closed:
		return fmt.Errorf("append: %w: %w", ErrRejected, ErrClosed)
	case w.err != nil:
		return fmt.Errorf("append: %w: %w", ErrRejected, w.err)
	case w.Pending() >= w.opts.MaxPending:
		return fmt.Errorf("append: %w: %d records buffered after failed writes", ErrRejected, w.Pending())
	}
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("append: %w: %w", ErrRejected, err)
	}
	w.benc.add(r)
	w.blk.Add(r)
	for _, a := range w.aux {
		a.Add(unsafe.Slice(r, 1))
	}
	if w.benc.n >= w.opts.BlockRecords {
		return w.write(false)
	}
	return nil
}

// heldBlock is a block whose write failed, kept for the next attempt.
type heldBlock struct {
	raw   []byte
	count int
	sum   *Summarizer
}

// Flush writes the buffered records as a block (several if more than
// BlockRecords are buffered after failures) and, with SyncOnFlush, fsyncs.
func (w *Writer) Flush() error {
	if w.closed {
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	if w.err != nil {
		return fmt.Errorf("flush: %w", w.err)
	}
	if err := w.write(true); err != nil {
		return err
	}
	if w.opts.SyncOnFlush {
		if s, ok := w.w.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				return fmt.Errorf("flush: sync: %w", err)
			}
		}
	}
	return nil
}

// write writes the held blocks, then the current block when it is full
// or, with partial, when it holds any record. A full current block that
// cannot be written is held, so that appends go on into a new one.
func (w *Writer) write(partial bool) error {
	full := w.benc.n >= w.opts.BlockRecords
	for len(w.held) > 0 {
		h := &w.held[0]
		if err := w.writeBlock([][]byte{h.raw}, len(h.raw), h.count, h.sum); err != nil {
			if full {
				w.holdCurrent()
			}
			return err
		}
		w.heldN -= h.count
		*h = heldBlock{}
		w.held = w.held[1:]
	}
	if w.benc.n == 0 || !(full || partial) {
		return nil
	}
	pieces, n := w.benc.pieces()
	if err := w.writeBlock(pieces, n, w.benc.n, w.blk); err != nil {
		if full {
			w.holdCurrent()
		}
		return err
	}
	w.benc.reset()
	w.blk.reset()
	return nil
}

// holdCurrent keeps the current block for a later write and starts a new
// one.
func (w *Writer) holdCurrent() {
	w.held = append(w.held, heldBlock{raw: bytes.Clone(w.benc.finish()), count: w.benc.n, sum: w.blk})
	w.heldN += w.benc.n
	w.benc.reset()
	w.blk = NewSummarizer()
}

// writeBlock compresses and writes the payload of a block of count
// records (sum: their summary), given as consecutive pieces of rawLen
// bytes in all.
func (w *Writer) writeBlock(pieces [][]byte, rawLen, count int, sum *Summarizer) error {
	sum.s.Blocks = 1
	if rawLen > MaxBlockBytes {
		return fmt.Errorf("write block %d: %d bytes exceeds %d", w.sum.s.Blocks, rawLen, MaxBlockBytes)
	}
	// The section header, then the compressed payload, in one buffer:
	// one write.
	// Room for the payload compressed at the last block's ratio (half
	// for the first), plus an eighth: compressing grows the buffer only
	// when a block compresses worse than that. Sized for zstd's worst
	// case, the buffer took twice the memory its blocks use.
	est := rawLen / 2
	if w.lastRaw > 0 {
		est = int(int64(rawLen) * int64(w.lastZ) / int64(w.lastRaw))
	}
	if need := sectionHeaderLen + est + est/8 + 1024; cap(w.buf) < need {
		w.buf = make([]byte, 0, need+need/4) // room for the next blocks' variations
	}
	block, err := w.compress(pieces, rawLen)
	if err != nil {
		return fmt.Errorf("write block %d: compress: %w", w.sum.s.Blocks, err)
	}
	w.buf = block
	z := block[sectionHeaderLen:]
	w.lastRaw, w.lastZ = rawLen, len(z)
	if len(z) > MaxBlockBytes {
		return fmt.Errorf("write block %d: %d compressed bytes exceed %d", w.sum.s.Blocks, len(z), MaxBlockBytes)
	}
	appendSectionHeader(block[:0], section{
		magic:      blockMagic,
		length:     uint32(len(z)),
		rawLength:  uint32(rawLen),
		count:      uint32(count),
		payloadCRC: crc(z),
	})
	if err := w.writeAll(block); err != nil {
		return fmt.Errorf("write block %d (%d records) at offset %d: %w", w.sum.s.Blocks, count, w.off, err)
	}
	w.off += int64(len(block))
	w.sum.Merge(sum)
	return nil
}

// compress compresses the pieces of a payload of rawLen bytes as a stream
// into one frame, which states the payload's size as EncodeAll's frames
// do, after the room for a section header in w.buf.
func (w *Writer) compress(pieces [][]byte, rawLen int) ([]byte, error) {
	w.encMu.Lock()
	defer w.encMu.Unlock()
	zw := appender{b: w.buf[:sectionHeaderLen]}
	w.enc.ResetContentSize(&zw, int64(rawLen))
	for _, p := range pieces {
		if _, err := w.enc.Write(p); err != nil {
			return nil, err
		}
	}
	if err := w.enc.Close(); err != nil {
		return nil, err
	}
	return zw.b, nil
}

// detach returns the writer's block buffers for the file that follows
// it, or nil when it still needs them: records not written, blocks held
// after a failed write, or a broken or closed writer. The writer keeps an
// empty encoder, enough to close the file.
func (w *Writer) detach() *blockState {
	if w.closed || w.err != nil || w.benc.n != 0 || len(w.held) > 0 {
		return nil
	}
	st := &blockState{benc: w.benc, buf: w.buf, lastRaw: w.lastRaw, lastZ: w.lastZ}
	w.benc, w.buf = &blockEncoder{blockRecords: w.opts.BlockRecords}, nil
	return st
}

// appender is an io.Writer that appends to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// writeAll writes b at w.off. On failure it cuts the file back to w.off
// or, when it cannot, marks the writer broken.
func (w *Writer) writeAll(b []byte) error {
	n, err := w.w.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		return nil
	}
	if n == 0 {
		return err
	}
	t, ok := w.w.(interface {
		Truncate(int64) error
		Seek(int64, int) (int64, error)
	})
	if !ok {
		w.err = fmt.Errorf("%w: partial write of %d bytes cannot be undone: %w", ErrBroken, n, err)
		return w.err
	}
	if terr := t.Truncate(w.off); terr != nil {
		w.err = fmt.Errorf("%w: truncate to %d after failed write: %w", ErrBroken, w.off, errors.Join(err, terr))
		return w.err
	}
	if _, serr := t.Seek(w.off, io.SeekStart); serr != nil {
		w.err = fmt.Errorf("%w: seek to %d after failed write: %w", ErrBroken, w.off, errors.Join(err, serr))
		return w.err
	}
	return err
}

// SequenceFailures adds n to the file's sequence failure counters, total
// and for the exporter (address and observation domain). The collector
// calls it when an exporter's sequence numbers show lost datagrams.
func (w *Writer) SequenceFailures(exporter netip.Addr, domain uint32, n uint64) {
	w.sum.sequenceFailures(exporter, domain, n)
}

// Summary returns the summary of the records written to the file so far
// (buffered records are not included).
func (w *Writer) Summary() Summary { return w.sum.Summary() }

// Pending returns the number of buffered records.
func (w *Writer) Pending() int { return w.heldN + w.benc.n }

// Size returns the file size up to its last whole block.
func (w *Writer) Size() int64 { return w.off }

// Unwritten returns copies of the records the writer holds but has not
// written. After a Close that returned an error, these are the records
// missing from the file.
func (w *Writer) Unwritten() []flow.Record {
	var out []flow.Record
	var d blockDecoder
	add := func(raw []byte, count int) {
		recs, err := d.decode(raw, count, nil, AllFields)
		if err != nil {
			// The writer's own encoding of records checkRecord accepted:
			// it always decodes.
			panic(fmt.Sprintf("flowfile: held block does not decode: %v", err))
		}
		out = append(out, recs...)
	}
	for _, h := range w.held {
		add(h.raw, h.count)
	}
	if w.benc.n > 0 {
		add(w.benc.finish(), w.benc.n)
	}
	return out
}

// Close writes the buffered records, the summary and the footer, fsyncs and
// closes the file. The summary describes the blocks actually written: if a
// block write fails, Close still finishes the file without those records,
// returns the error, and Unwritten returns them.
func (w *Writer) Close() error {
	if w.closed {
		return fmt.Errorf("close: %w", ErrClosed)
	}
	w.closed = true
	var errs []error
	if w.err == nil {
		if err := w.write(true); err != nil {
			errs = append(errs, fmt.Errorf("close: %w", err))
		}
	}
	if w.err == nil {
		if w.Pending() > 0 {
			w.aux = nil // they counted records the file does not hold
		}
		w.encMu.Lock()
		aux, refs, err := w.closingAux(w.off)
		w.encMu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("close: %w", err))
			aux, refs = nil, nil
		}
		b := appendClosing(aux, w.off+int64(len(aux)), w.sum.Summary(), w.header.Version, refs)
		if err := w.writeAll(b); err != nil {
			errs = append(errs, fmt.Errorf("close: write summary at offset %d: %w", w.off, err))
		} else {
			w.off += int64(len(b))
		}
		if s, ok := w.w.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("close: sync: %w", err))
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("close: %w", w.err))
	}
	if w.ownEnc {
		w.enc.Close()
	}
	if w.closer != nil {
		if err := w.closer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close: %w", err))
		}
	}
	return errors.Join(errs...)
}

// appendClosing appends the summary section (at offset off) with its index
// of the auxiliary sections and the footer: what ends a file.
func appendClosing(dst []byte, off int64, s Summary, version uint16, aux []auxRef) []byte {
	sum := appendSummary(nil, s, version, aux)
	dst = appendSectionHeader(dst, section{
		magic:      summaryMagic,
		length:     uint32(len(sum)),
		rawLength:  uint32(len(sum)),
		payloadCRC: crc(sum),
	})
	dst = append(dst, sum...)
	return appendFooter(dst, off)
}

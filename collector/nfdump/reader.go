// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Reader reads one nfdump file, a data block at a time. It is not safe
// for concurrent use.
type Reader struct {
	path   string
	ra     io.ReaderAt
	closer io.Closer
	size   int64
	hdr    Header
	pos    int64 // offset of the next data block
	dec    *decoder
	inf    inflater
	buf    []byte
	res    ScanResult
	err    error // sticky: the file is damaged past this point
}

// Open opens the nfdump file at path and reads its header (and, for a
// layout 2 file nfcapd closed, its appendix: ident and statistics).
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open nfdump file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open nfdump file: %w", err)
	}
	r, err := NewReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads the header of the nfdump file of size bytes in ra; name
// is used in errors.
func NewReader(ra io.ReaderAt, size int64, name string) (*Reader, error) {
	r := &Reader{path: name, ra: ra, size: size, dec: newDecoder()}
	if err := r.readHeader(); err != nil {
		return nil, err
	}
	r.pos = r.hdr.dataFrom
	r.res.Header = r.hdr
	return r, nil
}

func (r *Reader) fail(off int64, err error) error {
	return &Error{Path: r.path, Offset: off, Err: err}
}

func (r *Reader) readAt(b []byte, off int64) error {
	n, err := r.ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) readHeader() error {
	var b [headerV1Len + statV1Len]byte
	if r.size < 4 {
		return r.fail(0, fmt.Errorf("%w: %d bytes", ErrNotNfdump, r.size))
	}
	if err := r.readAt(b[:4], 0); err != nil {
		return r.fail(0, err)
	}
	switch m := le16(b[:], 0); {
	case m == 0x0CA5:
		return r.fail(0, fmt.Errorf("%w: big endian file", ErrUnsupported))
	case m != magic:
		return r.fail(0, fmt.Errorf("%w: magic %#04x", ErrNotNfdump, m))
	}
	var err error
	switch v := le16(b[:], 2); v {
	case LayoutV1:
		if r.size < int64(len(b)) {
			return r.fail(0, fmt.Errorf("%w: %d bytes, shorter than a layout 1 header", ErrCorrupt, r.size))
		}
		if err := r.readAt(b[:], 0); err != nil {
			return r.fail(0, err)
		}
		r.hdr, err = parseHeaderV1(b[:])
		r.hdr.dataEnd = r.size
	case LayoutV2:
		if r.size < headerV2Len {
			return r.fail(0, fmt.Errorf("%w: %d bytes, shorter than a layout 2 header", ErrCorrupt, r.size))
		}
		if err := r.readAt(b[:headerV2Len], 0); err != nil {
			return r.fail(0, err)
		}
		if r.hdr, err = parseHeaderV2(b[:headerV2Len], r.size); err == nil && r.hdr.closed {
			return r.readAppendix(le16(b[:], 18))
		}
	default:
		return r.fail(0, fmt.Errorf("%w: layout version %d", ErrUnsupported, v))
	}
	if err != nil {
		return r.fail(0, err)
	}
	return nil
}

// readAppendix reads the ident and statistics records of a layout 2
// file's appendix blocks.
func (r *Reader) readAppendix(blocks uint16) error {
	pos := r.hdr.dataEnd
	for range blocks {
		bh, payload, err := r.rawBlock(pos, r.size, r.buf)
		if err != nil {
			return r.fail(pos, fmt.Errorf("appendix: %w", err))
		}
		data, err := r.inf.inflate(r.hdr.Compression, payload)
		if err != nil {
			return r.fail(pos, fmt.Errorf("%w: appendix: %v", ErrCorrupt, err))
		}
		off := 0
		for i := uint32(0); i < bh.records; i++ {
			if len(data)-off < 4 {
				return r.fail(pos, fmt.Errorf("%w: appendix record %d past the block", ErrCorrupt, i))
			}
			typ, size := le16(data, off), int(le16(data, off+2))
			if size < 4 || size > len(data)-off {
				return r.fail(pos, fmt.Errorf("%w: appendix record %d: size %d with %d bytes left", ErrCorrupt, i, size, len(data)-off))
			}
			v := data[off+4 : off+size]
			switch {
			case typ == typeIdent:
				r.hdr.Ident = cString(v)
			case typ == typeStat && len(v) >= statV2Len:
				r.hdr.Stat, r.hdr.HasStat = parseStatV2(v), true
			}
			off += size
		}
		pos += blockHeaderLen + int64(bh.size)
	}
	return nil
}

// rawBlock reads the block at off, which must end by end, into buf (grown
// when too small).
func (r *Reader) rawBlock(off, end int64, buf []byte) (blockHeader, []byte, error) {
	var h [blockHeaderLen]byte
	if end-off < blockHeaderLen {
		return blockHeader{}, nil, fmt.Errorf("%w: %d bytes left for a block header", io.ErrUnexpectedEOF, end-off)
	}
	if err := r.readAt(h[:], off); err != nil {
		return blockHeader{}, nil, err
	}
	bh := parseBlockHeader(h[:])
	if bh.size > maxBlockBytes {
		return bh, nil, fmt.Errorf("%w: block of %d bytes (at most %d)", ErrCorrupt, bh.size, maxBlockBytes)
	}
	if int64(bh.size) > end-off-blockHeaderLen {
		return bh, nil, fmt.Errorf("%w: block of %d bytes with %d left", io.ErrUnexpectedEOF, bh.size, end-off-blockHeaderLen)
	}
	if cap(buf) < int(bh.size) {
		buf = make([]byte, bh.size)
	}
	p := buf[:bh.size]
	if err := r.readAt(p, off+blockHeaderLen); err != nil {
		return bh, nil, err
	}
	return bh, p, nil
}

// Header returns what the file's header and appendix say.
func (r *Reader) Header() Header { return r.hdr }

// nextRaw reads the next data block into buf. At the end of the data it
// returns io.EOF; a file nfcapd had not closed that ends inside a block is
// Truncated, not damaged.
func (r *Reader) nextRaw(buf []byte) (off int64, bh blockHeader, payload []byte, err error) {
	off = r.pos
	if off >= r.hdr.dataEnd {
		return off, bh, nil, io.EOF
	}
	bh, payload, err = r.rawBlock(off, r.hdr.dataEnd, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) && !r.hdr.closed {
		r.res.Truncated = true
		return off, bh, nil, io.EOF
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return off, bh, nil, r.fail(off, err)
	}
	r.pos = off + blockHeaderLen + int64(bh.size)
	return off, bh, payload, nil
}

// decodeBlock decodes an inflated block, appending its flows to dst.
func (r *Reader) decodeBlock(off int64, bh blockHeader, data []byte, dst []flow.Record) ([]flow.Record, error) {
	r.res.Blocks++
	if bh.typ != blockTypeV1 && bh.typ != blockTypeV3 {
		r.res.SkippedBlocks++
		return dst, nil
	}
	n := len(dst)
	dst, err := r.dec.block(data, bh.records, dst)
	r.res.Records += uint64(len(dst) - n)
	if err != nil {
		return dst, r.fail(off, err)
	}
	return dst, nil
}

// Next appends the flows of the next data block to dst (blocks without
// flows append nothing) and returns io.EOF after the last block. A damaged
// block is an *Error; the flows of the block up to the damage are
// appended.
func (r *Reader) Next(dst []flow.Record) ([]flow.Record, error) {
	if r.err != nil {
		return dst, r.err
	}
	off, bh, payload, err := r.nextRaw(r.buf)
	if err == nil {
		r.buf = payload[:0]
		var data []byte
		if data, err = r.inf.inflate(r.hdr.Compression, payload); err != nil {
			err = r.fail(off, fmt.Errorf("%w: %v", ErrCorrupt, err))
		} else {
			dst, err = r.decodeBlock(off, bh, data, dst)
		}
	}
	if err == io.EOF {
		err = r.end()
	}
	r.err = err
	return dst, err
}

// end checks, at the end of the data, that a closed layout 2 file held the
// blocks its header announced.
func (r *Reader) end() error {
	if r.hdr.closed && uint32(r.res.Blocks) != r.hdr.Blocks {
		return r.fail(r.pos, fmt.Errorf("%w: %d data blocks before the appendix, the header says %d", ErrCorrupt, r.res.Blocks, r.hdr.Blocks))
	}
	return io.EOF
}

// Result returns what the reader read so far, with the exporters the file
// named.
func (r *Reader) Result() ScanResult {
	res := r.res
	res.UnknownRecords, res.UnknownElements, res.UnknownExtensions = r.dec.unknownRecords, r.dec.unknownElements, r.dec.unknownExtensions
	res.Exporters = r.dec.exporterList()
	return res
}

// Close releases the file.
func (r *Reader) Close() error {
	r.inf.close()
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"io"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Block-level reading, for readers that follow files as they are written
// and remember how far they got (the ClickHouse shipper): whole blocks
// with their position, from any block boundary.

// BlockInfo identifies a whole block of a file. A block keeps its offset
// when a crashed file is recovered and when the file is renamed at
// rotation, so (file, Offset, CRC) names the same records for good.
type BlockInfo struct {
	Index   int    // block index in the file, from 0
	Offset  int64  // file offset of the block header
	Next    int64  // where the next section starts
	Records int    // records in the block
	CRC     uint32 // CRC32C of the stored payload
}

// FirstBlock returns the offset of the file's first block (the end of
// its header).
func (r *Reader) FirstBlock() int64 {
	return int64(headerFixed + len(r.header.Ident) + 4)
}

// SeekBlock positions the reader at a block boundary: an offset from
// FirstBlock or a BlockInfo's Next, and the index of the block there.
func (r *Reader) SeekBlock(off int64, index int) error {
	if r.closed {
		return fmt.Errorf("seek block: %w", ErrClosed)
	}
	if off < r.FirstBlock() || index < 0 {
		return fmt.Errorf("seek block: offset %d, index %d out of range", off, index)
	}
	r.pos, r.block = off, index
	r.recs, r.i, r.cur = r.recs[:0], 0, nil
	r.err, r.done, r.end = nil, false, End{}
	return nil
}

// NextBlock reads the next whole block and returns its records (valid
// until the next call) and where it is. After the last whole block it
// returns io.EOF and End says how the file ended: EndClean for a finished
// file, EndTruncated when no more whole blocks are there yet (a file
// being written, or cut by a crash). A block that fails its checks
// returns a *CorruptBlockError; calling NextBlock again continues after
// it. Next and NextBlock should not be mixed.
func (r *Reader) NextBlock() ([]flow.Record, BlockInfo, error) {
	if r.closed {
		return nil, BlockInfo{}, fmt.Errorf("next block: %w", ErrClosed)
	}
	r.recs, r.i, r.cur = r.recs[:0], 0, nil
	if r.done {
		return nil, BlockInfo{}, io.EOF
	}
	r.err = nil
	for {
		before := r.pos
		if err := r.nextBlock(); err != nil {
			var ce *CorruptBlockError
			if errors.As(err, &ce) {
				r.corrupt = append(r.corrupt, *ce)
				r.end.Corrupt++
			}
			return nil, BlockInfo{}, err
		}
		if r.done {
			return nil, BlockInfo{}, io.EOF
		}
		if r.last.Offset == before {
			break
		}
		// An auxiliary section: not records, go on.
	}
	recs := r.recs
	r.i = len(recs) // Next does not serve them again
	return recs, r.last, nil
}

// Position returns where the reader is: the offset of the next section
// and the index of the block there (after a corrupt block, past it).
func (r *Reader) Position() (off int64, index int) { return r.pos, r.block }

// SkipBlock steps over the next whole block, checking only its header:
// for counting the blocks ahead cheaply. It returns io.EOF at the end of
// the whole blocks or at anything that is not a sane block header.
func (r *Reader) SkipBlock() (BlockInfo, error) {
	if r.closed {
		return BlockInfo{}, fmt.Errorf("skip block: %w", ErrClosed)
	}
	if r.done || r.size-r.pos < sectionHeaderLen {
		return BlockInfo{}, io.EOF
	}
	if err := r.readAt(r.hbuf[:], r.pos); err != nil {
		return BlockInfo{}, fmt.Errorf("skip block %d at offset %d: %w", r.block, r.pos, err)
	}
	s, ok := parseSectionHeader(r.hbuf[:])
	if !ok || s.magic == summaryMagic || s.sane() != "" {
		return BlockInfo{}, io.EOF
	}
	end := r.pos + sectionHeaderLen + int64(s.length)
	if end > r.size {
		return BlockInfo{}, io.EOF
	}
	if s.magic == auxMagic {
		r.pos = end
		return r.SkipBlock()
	}
	info := BlockInfo{Index: r.block, Offset: r.pos, Next: end, Records: int(s.count), CRC: s.payloadCRC}
	r.pos, r.block = end, r.block+1
	return info, nil
}

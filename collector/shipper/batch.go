// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// blockID is a block's identity in ClickHouse's block_id column.
func blockID(key string, created, offset int64, crc uint32) uint64 {
	h := fnv.New64a()
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(created))
	binary.LittleEndian.PutUint64(b[8:], uint64(offset))
	binary.LittleEndian.PutUint32(b[16:], crc)
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(b[:])
	return h.Sum64()
}

// piece is the rows of one block in one day (UTC): the unit an insert
// lands whole or not at all, and what a check looks up.
type piece struct {
	block  uint64
	day    int64 // days since the Unix epoch
	rows   int
	file   *fileState
	offset int64 // the block's offset in its file
}

type pieceKey struct {
	block uint64
	day   int64
}

// span is the blocks of one file a batch covers: [from, to).
type span struct {
	st              *fileState
	from, to        int64
	fromIdx, toIdx  int
	done            bool // the batch reaches the end of a finished file
	corrupt, blocks int
}

// batch is one insert's worth of blocks.
type batch struct {
	spans  []*span
	pieces []piece
	rows   int // rows encoded
	blocks int
	raw    int // RowBinary bytes
	// body is the insert's body (RowBinary, gzip-compressed with the
	// builder's gzip), in the builder's buffer: valid until its next build.
	body    []byte
	skipped int // rows with a time ClickHouse cannot store
	dupRows int // rows left out because they are already there
	days    []int64
}

// empty reports whether the batch ships nothing and moves no file on.
func (b *batch) empty() bool {
	for _, s := range b.spans {
		if s.to != s.from || s.done {
			return false
		}
	}
	return true
}

// builder reads blocks into batches.
type builder struct {
	maxRows, maxBlocks int
	loc                *time.Location
	prefix             string
	gzip               bool // compress the bodies
	gz                 *gzip.Writer
	rows               []byte
	// body is the buffer of the batches' bodies, reused: grown anew for
	// each batch, it was a tenth of the shipper's CPU in clearing fresh
	// memory, and garbage of the batch's size.
	body      bytes.Buffer
	days      map[int64]int
	onCorrupt func(path string, err error)
}

// build reads whole blocks of files, in order, from their checkpoint
// until the batch is full. With limit, it reads only the files and up to
// the offsets limit names (a rebuild of the same blocks). Pieces in skip
// are left out of the rows (they are in ClickHouse already). Rows are
// encoded only when encode is set.
func (bd *builder) build(files []*fileState, limit map[*fileState]int64, skip map[pieceKey]bool, encode bool) (*batch, error) {
	b := &batch{}
	if encode {
		bd.body.Reset()
		switch {
		case !bd.gzip: // the rows go to the body as they are
		case bd.gz == nil:
			gz, err := gzip.NewWriterLevel(&bd.body, gzip.BestSpeed)
			if err != nil {
				return nil, err
			}
			bd.gz = gz
		default:
			bd.gz.Reset(&bd.body)
		}
	}
	full := false
	for _, st := range files {
		if full {
			break
		}
		end, limited := limit[st]
		if limit != nil && !limited {
			continue
		}
		sp, err := bd.readFile(b, st, end, limited, skip, encode, &full)
		if err != nil {
			return nil, err
		}
		if sp != nil {
			b.spans = append(b.spans, sp)
		}
	}
	if encode {
		if bd.gzip {
			if err := bd.gz.Close(); err != nil {
				return nil, fmt.Errorf("compress batch: %w", err)
			}
		}
		b.body = bd.body.Bytes()
	}
	return b, nil
}

// readFile adds the blocks of one file to b.
func (bd *builder) readFile(b *batch, st *fileState, end int64, limited bool, skip map[pieceKey]bool, encode bool, full *bool) (*span, error) {
	r, err := flowfile.Open(st.Path, flowfile.ReaderOptions{})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // renamed or removed since the scan: the next scan sees it
	}
	if err != nil {
		return nil, fmt.Errorf("ship %s: %w", st.Path, err)
	}
	defer r.Close()
	if err := r.SeekBlock(st.Offset, st.Index); err != nil {
		return nil, fmt.Errorf("ship %s: %w", st.Path, err)
	}
	received := time.Time{}
	if n, ok := flowfile.ParseName(bd.prefix, filepath.Base(st.Path), bd.loc); ok {
		received = n.Slot
	}
	pos := position(bd.prefix, st.Path)
	sp := &span{st: st, from: st.Offset, to: st.Offset, fromIdx: st.Index, toIdx: st.Index}
	for {
		if limited && sp.to >= end {
			break
		}
		recs, info, err := r.NextBlock()
		if errors.Is(err, io.EOF) {
			sp.done = !st.current
			break
		}
		var ce *flowfile.CorruptBlockError
		if errors.As(err, &ce) {
			if bd.onCorrupt != nil {
				bd.onCorrupt(st.Path, err)
			}
			sp.corrupt++
			sp.to, sp.toIdx = r.Position()
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ship %s: %w", st.Path, err)
		}
		clear(bd.days)
		if bd.days == nil {
			bd.days = make(map[int64]int)
		}
		for i := range recs {
			bd.days[dayOf(clickhouse.RowTime(&recs[i], received))]++
		}
		if b.blocks > 0 && (b.rows+len(recs) > bd.maxRows || b.blocks >= bd.maxBlocks || !sameDays(bd.days, b.days)) {
			*full = true
			break
		}
		id := blockID(st.Key, st.Created, info.Offset, info.CRC)
		pos.Offset = info.Offset
		if err := bd.addBlock(b, recs, received, id, st, pos, skip, encode); err != nil {
			return nil, err
		}
		if b.blocks == 0 {
			for d := range bd.days {
				b.days = append(b.days, d)
			}
		}
		b.blocks++
		sp.blocks++
		sp.to, sp.toIdx = info.Next, info.Index+1
	}
	return sp, nil
}

// sameDays reports whether the block's days are the batch's one day.
func sameDays(block map[int64]int, batch []int64) bool {
	if len(block) == 0 {
		return true
	}
	if len(block) != 1 || len(batch) != 1 {
		return false
	}
	_, ok := block[batch[0]]
	return ok
}

// position is where the records of a file stand (clickhouse.Position),
// but for their block and index: the file's slot as the query engine
// reads it, and its path as it is named once finished.
func position(prefix, path string) clickhouse.Position {
	var p clickhouse.Position
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	dir, base := filepath.Split(filepath.Clean(path))
	if n, ok := flowfile.ParseName(prefix, base, time.UTC); ok {
		p.Slot = n.Slot
		if rest, ok := strings.CutPrefix(base, prefix+".current."); ok {
			base = prefix + "." + rest
		}
	}
	p.File = dir + base
	return p
}

func (bd *builder) addBlock(b *batch, recs []flow.Record, received time.Time, id uint64, st *fileState, pos clickhouse.Position, skip map[pieceKey]bool, encode bool) error {
	offset := pos.Offset
	rows := map[int64]int{}
	buf := bd.rows[:0]
	for i := range recs {
		r := &recs[i]
		day := dayOf(clickhouse.RowTime(r, received))
		if skip[pieceKey{id, day}] {
			b.dupRows++
			continue
		}
		n := len(buf)
		var err error
		if buf, err = clickhouse.AppendRow(buf, r, received, id); err != nil {
			b.skipped++
		} else {
			pos.Index = i
			buf = clickhouse.AppendPosition(buf, pos)
			buf = clickhouse.AppendCgroup(buf, r)
			rows[day]++
		}
		if !encode || err != nil {
			buf = buf[:n]
		}
	}
	bd.rows = buf
	for day, n := range rows {
		b.pieces = append(b.pieces, piece{block: id, day: day, rows: n, file: st, offset: offset})
		b.rows += n
	}
	if encode && len(buf) > 0 {
		b.raw += len(buf)
		if !bd.gzip {
			bd.body.Write(buf)
		} else if _, err := bd.gz.Write(buf); err != nil {
			return fmt.Errorf("compress batch: %w", err)
		}
	}
	return nil
}

func dayOf(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return -1
	}
	return s / 86400
}

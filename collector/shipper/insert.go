// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/kflow-dev/kflow/collector/clickhouse"
)

// One step of shipping: a batch read, the blocks that may be in ClickHouse
// already looked up, the insert, the checkpoint moved on.

// step ships one batch. progressed is false when there was nothing to
// ship.
func (s *Shipper) step(ctx context.Context) (progressed bool, err error) {
	began := s.opts.Now()
	files, err := s.scan()
	if err != nil {
		return false, err
	}
	var ready []*fileState
	for _, st := range files {
		if st.Offset < 0 {
			// A new file: it starts after its header.
			off, err := firstBlock(st.Path)
			if err != nil {
				continue // removed or renamed since: the next scan
			}
			s.mu.Lock()
			st.Offset = off
			s.mu.Unlock()
		}
		ready = append(ready, st)
	}

	b, err := s.bd.build(ready, nil, nil, true)
	if err != nil {
		return false, err
	}
	if b.empty() {
		s.noteLag(began, ready, true)
		return false, s.advanceWatermark()
	}
	// Blocks that may be in ClickHouse already (sent, never
	// acknowledged) are looked up, and those there left out.
	present, err := s.check(ctx, b)
	if err != nil {
		return false, err
	}
	if len(present) > 0 {
		limit := map[*fileState]int64{}
		for _, sp := range b.spans {
			limit[sp.st] = sp.to
		}
		again, err := s.bd.build(ready, limit, present, true)
		if err != nil {
			return false, err
		}
		if again.blocks != b.blocks {
			return false, fmt.Errorf("rebuild of a batch read %d blocks, the first build %d", again.blocks, b.blocks)
		}
		b = again
		s.mu.Lock()
		s.stats.Duplicates += uint64(b.dupRows)
		s.mu.Unlock()
		s.event(Event{Kind: EventDuplicates, Rows: b.dupRows, Blocks: len(present),
			Detail: "found in ClickHouse after an unacknowledged insert: not sent again"})
	}
	if b.skipped > 0 {
		s.mu.Lock()
		s.stats.Unrepresentable += uint64(b.skipped)
		s.mu.Unlock()
		s.event(Event{Kind: EventUnrepresentable, Rows: b.skipped})
	}
	if b.rows > 0 {
		if err := s.insert(ctx, b); err != nil {
			return false, err
		}
	}
	if err := s.advance(b); err != nil {
		return true, err
	}
	s.noteLag(began, ready, false)
	return true, nil
}

// check looks up, on the servers they may have reached, the pieces of b
// from blocks sent without an acknowledgment, and returns those there.
func (s *Shipper) check(ctx context.Context, b *batch) (map[pieceKey]bool, error) {
	byServer := map[string][]piece{}
	s.mu.Lock()
	for _, p := range b.pieces {
		for url, end := range p.file.Sent {
			if p.offset < end {
				byServer[url] = append(byServer[url], p)
			}
		}
	}
	s.mu.Unlock()
	if len(byServer) == 0 {
		return nil, nil
	}
	present := map[pieceKey]bool{}
	for url, pieces := range byServer {
		sv := s.server(url)
		if sv == nil {
			s.event(Event{Kind: EventUnverifiable, Server: url, Blocks: len(pieces),
				Detail: "blocks sent to a server no longer configured are sent again: they may be doubled there"})
			continue
		}
		for i := 0; i < len(pieces); i += checkChunk {
			got, err := s.lookup(ctx, sv, pieces[i:min(i+checkChunk, len(pieces))])
			if err != nil {
				return nil, err
			}
			for k := range got {
				present[k] = true
			}
		}
	}
	return present, nil
}

func (s *Shipper) server(url string) *server {
	for _, sv := range s.servers {
		if sv.url == url {
			return sv
		}
	}
	return nil
}

// lookup returns which pieces are in the flows table of sv, whole. A
// piece there with another row count is an error: it cannot be mended
// without doubling or losing rows.
func (s *Shipper) lookup(ctx context.Context, sv *server, pieces []piece) (map[pieceKey]bool, error) {
	want := map[pieceKey]int{}
	lo, hi := pieces[0].day, pieces[0].day
	ids := ""
	seen := map[uint64]bool{}
	for _, p := range pieces {
		want[pieceKey{p.block, p.day}] = p.rows
		lo, hi = min(lo, p.day), max(hi, p.day)
		if !seen[p.block] {
			seen[p.block] = true
			if ids != "" {
				ids += ","
			}
			ids += fmt.Sprint(p.block)
		}
	}
	q := fmt.Sprintf("SELECT intDiv(toUInt32(time), 86400) AS day, block_id, count() FROM %s.%s"+
		" WHERE time >= toDateTime(%d) AND time < toDateTime(%d) AND block_id IN (%s) GROUP BY day, block_id",
		sv.c.Database(), clickhouse.TableFlows, max(lo, 0)*86400, (hi+1)*86400, ids)
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	rows, err := sv.c.QueryRows(rctx, q)
	if err != nil {
		return nil, fmt.Errorf("look up unacknowledged blocks: %w", err)
	}
	out := map[pieceKey]bool{}
	for _, r := range rows {
		var k pieceKey
		var n int
		if len(r) != 3 {
			return nil, fmt.Errorf("look up unacknowledged blocks: unexpected row %q", r)
		}
		if _, err := fmt.Sscan(r[0], &k.day); err != nil {
			return nil, fmt.Errorf("look up unacknowledged blocks: %q: %w", r, err)
		}
		if _, err := fmt.Sscan(r[1], &k.block); err != nil {
			return nil, fmt.Errorf("look up unacknowledged blocks: %q: %w", r, err)
		}
		if _, err := fmt.Sscan(r[2], &n); err != nil {
			return nil, fmt.Errorf("look up unacknowledged blocks: %q: %w", r, err)
		}
		rows, ok := want[k]
		if !ok {
			continue
		}
		if n != rows {
			return nil, fmt.Errorf("block %d of day %d has %d rows in %s, %d in the files: refusing to guess", k.block, k.day, n, sv.url, rows)
		}
		out[k] = true
	}
	return out, nil
}

// insert sends b to the next server. The checkpoint first records that
// b's blocks are on their way there.
func (s *Shipper) insert(ctx context.Context, b *batch) error {
	sv := s.servers[s.next%len(s.servers)]
	s.next++
	s.mu.Lock()
	prev := map[*fileState]int64{}
	for _, sp := range b.spans {
		if sp.to == sp.from {
			continue
		}
		old, ok := sp.st.Sent[sv.url]
		if ok {
			prev[sp.st] = old
		} else {
			prev[sp.st] = -1
		}
		sp.st.Sent[sv.url] = max(old, sp.to)
	}
	err := s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	err = sv.c.Insert(rctx, clickhouse.TableFlows, clickhouse.InsertColumns(), b.body, s.bd.gzip)
	cancel()
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// Never connected: nothing was sent.
			s.mu.Lock()
			for st, old := range prev {
				if old < 0 {
					delete(st.Sent, sv.url)
				} else {
					st.Sent[sv.url] = old
				}
			}
			serr := s.saveLocked()
			s.mu.Unlock()
			return errors.Join(err, serr)
		}
		return err
	}
	if s.opts.AfterInsert != nil {
		s.opts.AfterInsert()
	}
	s.mu.Lock()
	s.stats.Inserts++
	s.stats.Rows += uint64(b.rows)
	s.stats.RawBytes += uint64(b.raw)
	s.stats.Bytes += uint64(len(b.body))
	s.mu.Unlock()
	return nil
}

// advance moves the checkpoint past b.
func (s *Shipper) advance(b *batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range b.spans {
		st := sp.st
		st.Offset, st.Index = sp.to, sp.toIdx
		st.Done = sp.done
		for url, end := range st.Sent {
			if end <= st.Offset {
				delete(st.Sent, url)
			}
		}
	}
	return s.saveLocked()
}

// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/flowfile"
)

// Defaults of Options.
const (
	DefaultPoll      = time.Second
	DefaultTimeout   = 2 * time.Minute
	DefaultMinRetry  = time.Second
	DefaultMaxRetry  = 30 * time.Second
	DefaultMaxBlocks = 4096
	// StateName is the checkpoint's file name in the flow directory
	// (retention and queries skip names that are not flow files).
	StateName = ".kflow-clickhouse.json"
	// watermarkLag keeps files created in the last hour listed in the
	// checkpoint even when shipped: a clock stepped back by less than
	// that cannot hide a new file behind the watermark.
	watermarkLag = time.Hour
	// retentionEvery is how often old partitions are dropped.
	retentionEvery = time.Hour
	// checkChunk bounds the block ids of one lookup query (ClickHouse
	// refuses queries past 256 KiB by default).
	checkChunk = 2000
)

// Options configure a Shipper.
type Options struct {
	// Dir is the flow-file directory (the collector's --dir), Sources
	// the directories of named exporters (--source); Prefix and Location
	// how their files are named.
	Dir      string
	Sources  []Source
	Prefix   string
	Location *time.Location
	// State is the checkpoint file (default Dir/StateName).
	State string
	// URLs are the ClickHouse servers, http://user:pass@host:8123/db:
	// one for a single node, one per shard for a cluster. Each insert
	// goes to one of them, in turn.
	URLs []string
	// Cluster, when set, names the cluster (remote_servers) the servers
	// form: Distributed tables over it are created for queries.
	Cluster   string
	Retention clickhouse.Retention
	// MaxRows bounds the rows of one insert (default and at most
	// clickhouse.MaxInsertRows); MaxBlocks its file blocks.
	MaxRows, MaxBlocks int
	// Poll is how often the files are checked for new blocks once all
	// is shipped.
	Poll time.Duration
	// Timeout bounds each request to ClickHouse.
	Timeout time.Duration
	// MinRetry and MaxRetry bound the wait after a failure (doubling).
	MinRetry, MaxRetry time.Duration
	// KflowVersion is recorded with schema migrations.
	KflowVersion string
	// HTTPClient (default: one per server).
	HTTPClient *http.Client
	// OnEvent, if set, is told what the caller should log.
	OnEvent func(Event)
	// AfterInsert, if set, is called after ClickHouse acknowledged an
	// insert and before the checkpoint records it (a test kills the
	// process there).
	AfterInsert func()
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// EventKind says what happened.
type EventKind int

const (
	// EventSchema: the schema on a server was checked, created or
	// migrated (Detail says which).
	EventSchema EventKind = iota
	// EventFailed: a request to ClickHouse failed; the shipper retries
	// after a wait, nothing is lost.
	EventFailed
	// EventRecovered: shipping works again after failures.
	EventRecovered
	// EventDuplicates: after a failure or a restart, blocks that might
	// have landed were found in ClickHouse and not sent again.
	EventDuplicates
	// EventUnshippedRemoved: a flow file was removed (by retention or
	// by hand) before all its blocks were shipped.
	EventUnshippedRemoved
	// EventCorruptBlock: a file block failed its checks and was skipped.
	EventCorruptBlock
	// EventUnrepresentable: records with a time ClickHouse's DateTime
	// cannot hold were not shipped (they stay in the files).
	EventUnrepresentable
	// EventRetention: partitions older than the retention were dropped.
	EventRetention
	// EventUnverifiable: blocks sent to a server no longer configured
	// could not be looked up; they are sent again (they may be doubled).
	EventUnverifiable
)

// Event is something the caller should log.
type Event struct {
	Kind   EventKind
	Server string // the server concerned, without password
	Path   string // the file concerned
	Rows   int
	Blocks int
	Bytes  int64
	Detail string
	Err    error
}

// Stats are what the shipper did.
type Stats struct {
	Rows       uint64 // rows inserted
	RawBytes   uint64 // their RowBinary size
	Bytes      uint64 // bytes sent (compressed)
	Inserts    uint64 // inserts acknowledged
	Errors     uint64 // failed requests
	Retries    uint64 // attempts after a failure
	Duplicates uint64 // rows found in ClickHouse already, not sent again
	// Unrepresentable rows were not shipped (times out of range).
	Unrepresentable uint64
	CorruptBlocks   uint64
	// UnshippedFiles were removed before being shipped whole;
	// UnshippedBytes is the part of them not shipped.
	UnshippedFiles uint64
	UnshippedBytes uint64
	Dropped        uint64 // partitions dropped by retention
	// Lag: everything the writer had written before LagSince is in
	// ClickHouse; LagBlocks and LagBytes are what waits in the files.
	LagSince  time.Time
	LagBlocks uint64
	LagBytes  uint64
	Ready     bool   // the schema is in place on every server
	LastError string // the last failure, if shipping is failing now
}

type server struct {
	c      *clickhouse.Client
	url    string
	schema clickhouse.Schema
	ready  bool
}

// Shipper ships flow files to ClickHouse. Run it on its own goroutine.
type Shipper struct {
	opts    Options
	servers []*server
	bd      builder
	next    int // the server of the next insert

	mu      sync.Mutex
	cp      *checkpoint
	files   map[fileID]*fileState
	byPath  map[string]pathID
	stats   Stats
	failing bool
	lastLag time.Time

	finishOnce sync.Once
	finish     chan struct{}
}

// New checks the options and loads the checkpoint. It does not contact
// ClickHouse: Run does, and keeps trying while it is down.
func New(opts Options) (*Shipper, error) {
	if opts.Dir == "" && len(opts.Sources) == 0 {
		return nil, errors.New("shipper: no flow directory")
	}
	for _, src := range opts.Sources {
		if src.Dir == "" || src.Key == "" || strings.ContainsRune(src.Key, '/') {
			return nil, fmt.Errorf("shipper: source %+v: want a directory and a key", src)
		}
	}
	if len(opts.URLs) == 0 {
		return nil, errors.New("shipper: no clickhouse url")
	}
	if opts.Prefix == "" {
		opts.Prefix = flowfile.DefaultPrefix
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.State == "" {
		dir := opts.Dir
		if dir == "" {
			dir = opts.Sources[0].Dir
		}
		opts.State = filepath.Join(dir, StateName)
	}
	if opts.MaxRows <= 0 || opts.MaxRows > clickhouse.MaxInsertRows {
		opts.MaxRows = clickhouse.MaxInsertRows
	}
	if opts.MaxBlocks <= 0 {
		opts.MaxBlocks = DefaultMaxBlocks
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MinRetry <= 0 {
		opts.MinRetry = DefaultMinRetry
	}
	if opts.MaxRetry < opts.MinRetry {
		opts.MaxRetry = max(DefaultMaxRetry, opts.MinRetry)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Shipper{
		opts:   opts,
		files:  make(map[fileID]*fileState),
		byPath: make(map[string]pathID),
		finish: make(chan struct{}),
		bd:     builder{maxRows: opts.MaxRows, maxBlocks: opts.MaxBlocks, loc: opts.Location, prefix: opts.Prefix},
	}
	s.bd.onCorrupt = s.corrupt
	seen := map[string]bool{}
	for _, u := range opts.URLs {
		c, err := clickhouse.NewClient(u, opts.HTTPClient)
		if err != nil {
			return nil, fmt.Errorf("shipper: %w", err)
		}
		if seen[c.String()] {
			return nil, fmt.Errorf("shipper: clickhouse %s given twice", c)
		}
		seen[c.String()] = true
		sch := clickhouse.Schema{Database: c.Database(), Cluster: opts.Cluster, Retention: opts.Retention}
		if err := sch.Validate(); err != nil {
			return nil, fmt.Errorf("shipper: %w", err)
		}
		s.servers = append(s.servers, &server{c: c, url: c.String(), schema: sch})
	}
	cp, err := loadCheckpoint(opts.State)
	if err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	s.cp = cp
	for _, f := range cp.Files {
		if f.Sent == nil {
			f.Sent = map[string]int64{}
		}
		s.files[f.id()] = f
	}
	return s, nil
}

func (s *Shipper) event(e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
}

// Stats returns a snapshot of what the shipper did.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Finish asks Run to ship what the files hold now and return once it
// has (or when its context ends). The collector calls it after closing
// its files at shutdown.
func (s *Shipper) Finish() { s.finishOnce.Do(func() { close(s.finish) }) }

func (s *Shipper) finishing() bool {
	select {
	case <-s.finish:
		return true
	default:
		return false
	}
}

// wait waits d, or less when ctx ends or (with stopOnFinish) Finish is
// called; false when ctx ended.
func (s *Shipper) wait(ctx context.Context, d time.Duration, stopOnFinish bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	fin := s.finish
	if !stopOnFinish {
		fin = nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-fin:
	}
	return true
}

// Run ships until ctx ends, or, after Finish, until everything is
// shipped. ClickHouse down or failing never ends it: it retries, with
// waits growing from MinRetry to MaxRetry.
func (s *Shipper) Run(ctx context.Context) error {
	backoff := s.opts.MinRetry
	var lastRetention time.Time
	for ctx.Err() == nil {
		err := s.prepare(ctx)
		if err == nil && s.opts.Now().Sub(lastRetention) >= retentionEvery {
			lastRetention = s.opts.Now()
			s.dropExpired(ctx)
		}
		// Finish asked before the step began: the step saw everything
		// the caller had written.
		finishing := s.finishing()
		progressed := false
		if err == nil {
			progressed, err = s.step(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.failed(err)
			if s.finishing() && !s.ready() {
				return fmt.Errorf("clickhouse: %w", err)
			}
			if !s.wait(ctx, backoff, false) {
				return nil
			}
			backoff = min(2*backoff, s.opts.MaxRetry)
			s.mu.Lock()
			s.stats.Retries++
			s.mu.Unlock()
			continue
		}
		backoff = s.opts.MinRetry
		s.recovered()
		if progressed {
			continue
		}
		if finishing {
			return nil
		}
		if !s.wait(ctx, s.opts.Poll, true) {
			return nil
		}
	}
	return nil
}

func (s *Shipper) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Ready
}

func (s *Shipper) failed(err error) {
	s.mu.Lock()
	s.stats.Errors++
	s.stats.LastError = err.Error()
	s.failing = true
	s.mu.Unlock()
	s.event(Event{Kind: EventFailed, Err: err})
}

func (s *Shipper) recovered() {
	s.mu.Lock()
	was := s.failing
	s.failing = false
	s.stats.LastError = ""
	s.mu.Unlock()
	if was {
		s.event(Event{Kind: EventRecovered})
	}
}

// prepare reads each server's version and brings its schema up to date,
// once.
func (s *Shipper) prepare(ctx context.Context) error {
	all := true
	for _, sv := range s.servers {
		if sv.ready {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		v, err := sv.c.Version(rctx)
		if err == nil {
			sv.schema.Version = v
			var a clickhouse.Applied
			a, err = clickhouse.Migrate(rctx, sv.c, &sv.schema, s.opts.KflowVersion)
			if err == nil {
				sv.ready = true
				detail := fmt.Sprintf("server %s, schema version %d", v, a.To)
				if len(a.Migrations) > 0 {
					detail += fmt.Sprintf(" (was %d: %v)", a.From, a.Migrations)
				}
				s.event(Event{Kind: EventSchema, Server: sv.url, Detail: detail})
			}
		}
		cancel()
		if err != nil {
			all = false
			if ctx.Err() == nil {
				return err
			}
		}
	}
	s.mu.Lock()
	s.stats.Ready = all
	s.mu.Unlock()
	return nil
}

func (s *Shipper) dropExpired(ctx context.Context) {
	for _, sv := range s.servers {
		rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		dropped, err := clickhouse.DropExpired(rctx, sv.c, &sv.schema, s.opts.Now())
		cancel()
		if len(dropped) > 0 {
			s.mu.Lock()
			s.stats.Dropped += uint64(len(dropped))
			s.mu.Unlock()
			s.event(Event{Kind: EventRetention, Server: sv.url, Detail: fmt.Sprint(dropped)})
		}
		if err != nil && ctx.Err() == nil {
			s.failed(err)
		}
	}
}

func (s *Shipper) corrupt(path string, err error) {
	s.mu.Lock()
	s.stats.CorruptBlocks++
	s.mu.Unlock()
	s.event(Event{Kind: EventCorruptBlock, Path: path, Blocks: 1, Err: err})
}

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

func firstBlock(path string) (int64, error) {
	r, err := flowfile.Open(path, flowfile.ReaderOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.FirstBlock(), nil
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
	err = sv.c.Insert(rctx, clickhouse.TableFlows, clickhouse.FlowColumns(), b.body.Bytes(), true)
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
	s.stats.Bytes += uint64(b.body.Len())
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

// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
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
	// DefaultMaxRows bounds an insert's rows. Its body is held in memory
	// whole: 230 to 310 bytes a row uncompressed (30 to 40 MB; a million
	// rows took 230 MB), and a local 18.16 server took 131,072-row
	// inserts faster than million-row ones (BenchmarkShip).
	DefaultMaxRows = 1 << 17
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
	// MaxRows bounds the rows of one insert (default DefaultMaxRows, at
	// most clickhouse.MaxInsertRows); MaxBlocks its file blocks.
	MaxRows, MaxBlocks int
	// Poll is how often the files are checked for new blocks once all
	// is shipped.
	Poll time.Duration
	// Timeout bounds each request to ClickHouse.
	Timeout time.Duration
	// Compression of the inserts' bodies (default CompressAuto).
	Compression Compression
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

// Compression says whether inserts are gzip-compressed.
type Compression string

const (
	// CompressAuto compresses unless every server is on a loopback
	// address, where compressing costs CPU (half the shipper's own) and
	// saves nothing.
	CompressAuto Compression = "auto"
	CompressGzip Compression = "gzip"
	CompressNone Compression = "none"
)

// ParseCompression parses auto, gzip or none.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case CompressAuto, CompressGzip, CompressNone:
		return c, nil
	}
	return "", fmt.Errorf("compression %q: want auto, gzip or none", s)
}

// gzipFor reports whether inserts to urls are compressed under c.
func gzipFor(c Compression, urls []string) bool {
	switch c {
	case CompressGzip:
		return true
	case CompressNone:
		return false
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || !loopbackHost(u.Hostname()) {
			return true
		}
	}
	return false
}

// loopbackHost reports whether a URL's host is this machine's loopback.
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
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
	Bytes      uint64 // bytes sent (compressed, unless the inserts are not)
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
	if opts.Compression == "" {
		opts.Compression = CompressAuto
	}
	if _, err := ParseCompression(string(opts.Compression)); err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxRows
	}
	opts.MaxRows = min(opts.MaxRows, clickhouse.MaxInsertRows)
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
		bd: builder{maxRows: opts.MaxRows, maxBlocks: opts.MaxBlocks, loc: opts.Location, prefix: opts.Prefix,
			gzip: gzipFor(opts.Compression, opts.URLs)},
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

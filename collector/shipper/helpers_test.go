// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// TestMain stops the server the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	chtest.StopShared()
	os.Exit(code)
}

var t0 = time.Date(2025, 3, 14, 23, 55, 0, 0, time.UTC)

// files writes records into rotated flow files as the collector does,
// on a clock the test moves.
type files struct {
	t   *testing.T
	dir string
	r   *flowfile.Rotator
	mu  sync.Mutex
	now time.Time
}

func newFiles(t *testing.T, dir string, perExporter bool) *files {
	t.Helper()
	return newFilesAt(t, dir, perExporter, t0)
}

// newFilesAt starts the clock at now.
func newFilesAt(t *testing.T, dir string, perExporter bool, now time.Time) *files {
	t.Helper()
	f := &files{t: t, dir: dir, now: now}
	r, err := flowfile.NewRotator(flowfile.RotatorOptions{
		Dir: dir, Interval: time.Minute, Location: time.UTC, PerExporter: perExporter,
		Now: f.clock, Writer: flowfile.WriterOptions{BlockRecords: 500},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

// clock is the rotator's clock: it ticks a microsecond per reading, as
// a real one moves between two files' creations (a file is known by its
// creation time).
func (f *files) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Microsecond)
	return f.now
}

func (f *files) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// add appends recs and flushes them as blocks.
func (f *files) add(recs []flow.Record) {
	f.t.Helper()
	if n := f.r.AppendAll(recs, nil); n != len(recs) {
		f.t.Fatalf("stored %d of %d records", n, len(recs))
	}
	if err := f.r.Flush(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *files) close() {
	f.t.Helper()
	if err := f.r.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// records returns n synthetic records of two exporters, each field used
// (cgroups in three of four),
// with times around t0 (some cross midnight).
func records(seed uint64, n int) []flow.Record {
	var out []flow.Record
	for i, exp := range []string{"198.18.255.1", "198.18.255.2"} {
		mix := synthflow.NewMix(synthflow.Options{Seed: seed*2 + uint64(i), Exporter: netip.MustParseAddr(exp), SubMs: true,
			Start: t0.Add(time.Duration(seed) * time.Minute)})
		for _, r := range mix.Records(n / 2) {
			r.ObservationDomain = uint32(i + 1)
			r.VLAN, r.InnerVLAN = uint16(r.SrcPort%7), uint16(r.DstPort%5)
			r.TOS, r.MinTTL, r.MaxTTL = uint8(r.Packets), 60, 64
			r.NextHop = netip.MustParseAddr("198.18.0.254")
			r.SrcAS, r.DstAS, r.SrcMask, r.DstMask = 64500, uint32(r.DstPort), 24, 16
			r.SamplingInterval = 1
			r.Direction = flow.Direction(r.SrcPort % 2)
			if k := int(r.SrcPort % 4); k < len(testCgroups) {
				r.CgroupID, r.Cgroup = uint64(100+k), testCgroups[k]
			}
			out = append(out, r)
		}
	}
	return out
}

// testCgroups are the cgroups of the records that have one.
var testCgroups = []string{
	"/system.slice/nginx.service",
	"/kubepods/burstable/pod01234567-89ab-cdef-0123-456789abcdef/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"/kflow-test/a",
}

// shipperOpts returns options for a test: fast polls and retries.
func shipperOpts(dir string, urls ...string) Options {
	return Options{Dir: dir, URLs: urls, Location: time.UTC, Retention: clickhouse.Retention{},
		Poll: 20 * time.Millisecond, MinRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond,
		Timeout: 30 * time.Second, MaxRows: 3000}
}

// running is a shipper on its goroutine.
type running struct {
	s      *Shipper
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
	mu     sync.Mutex
	events []Event
}

func start(t *testing.T, opts Options) *running {
	t.Helper()
	r := &running{done: make(chan struct{})}
	opts.OnEvent = func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
		t.Logf("event %d: %s %s %s rows=%d blocks=%d %v", e.Kind, e.Server, e.Path, e.Detail, e.Rows, e.Blocks, e.Err)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.err = s.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	return r
}

// finish ships what is left and waits for Run to return (a hang guard
// only bounds the wait).
func (r *running) finish(t *testing.T) {
	t.Helper()
	r.s.Finish()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatal(r.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("shipper did not finish: %+v", r.s.Stats())
	}
}

func (r *running) count(kind EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func client(t *testing.T, url string) *clickhouse.Client {
	t.Helper()
	c, err := clickhouse.NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func query(t *testing.T, c *clickhouse.Client, q string) string {
	t.Helper()
	b, err := c.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// stored reads back every row of the flows table.
func stored(t *testing.T, c *clickhouse.Client) []clickhouse.Row {
	t.Helper()
	b, err := c.Query(context.Background(), fmt.Sprintf("SELECT %s FROM %s.flows FORMAT RowBinary",
		strings.Join(clickhouse.RecordColumns(), ", "), c.Database()))
	if err != nil {
		t.Fatal(err)
	}
	rows, n, err := clickhouse.DecodeRecords(b)
	if err != nil || n != len(b) {
		t.Fatalf("%d of %d bytes decoded: %v", n, len(b), err)
	}
	return rows
}

func key(r *flow.Record) string { return fmt.Sprintf("%+v", *r) }

// sameRecords checks that ClickHouse holds exactly want: every field of
// every record, each once.
func sameRecords(t *testing.T, c *clickhouse.Client, want []flow.Record) {
	t.Helper()
	sameFlows(t, stored(t, c), want)
	// The per-minute and per-hour sums agree.
	var packets, bytes uint64
	for _, r := range want {
		packets += r.Packets
		bytes += r.Octets
	}
	w := fmt.Sprintf("%d\t%d\t%d", packets, bytes, len(want))
	for _, table := range []string{clickhouse.TableMinute, clickhouse.TableHour} {
		if got := query(t, c, fmt.Sprintf("SELECT sum(packets), sum(bytes), sum(flows) FROM %s.%s", c.Database(), table)); got != w {
			t.Errorf("%s: %s, want %s", table, got, w)
		}
	}
}

// sameFlows checks that rows are exactly want: every field of every
// record, each once.
func sameFlows(t *testing.T, rows []clickhouse.Row, want []flow.Record) {
	t.Helper()
	got := make([]string, len(rows))
	for i := range rows {
		got[i] = key(&rows[i].Record)
	}
	exp := make([]string, len(want))
	for i := range want {
		r := want[i]
		r.Start, r.End = r.Start.UTC(), r.End.UTC()
		exp[i] = key(&r)
	}
	slices.Sort(got)
	slices.Sort(exp)
	if len(got) != len(exp) {
		t.Errorf("ClickHouse holds %d rows, the files %d records", len(got), len(exp))
	}
	for i := 0; i < min(len(got), len(exp)); i++ {
		if got[i] != exp[i] {
			t.Fatalf("first difference (sorted, #%d):\n got %s\nwant %s", i, got[i], exp[i])
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

func dropDB(t *testing.T, url string) {
	t.Cleanup(func() {
		c := client(t, url)
		_ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+c.Database())
	})
}

// TestShipExact ships files being written (current and finished, per
// exporter, across midnight) and reads every field of every record back,
// with gzip-compressed inserts and with auto compression (none to the
// test's server, on loopback).
func TestShipExact(t *testing.T) {
	for _, comp := range []Compression{CompressGzip, CompressAuto} {
		t.Run(string(comp), func(t *testing.T) { testShipExact(t, comp) })
	}
}

func testShipExact(t *testing.T, comp Compression) {
	db := "kflow_exact_" + string(comp)
	url := chtest.Shared(t).URL(db)
	dropDB(t, url)
	dir := t.TempDir()
	f := newFiles(t, dir, true)
	opts := shipperOpts(dir, url)
	opts.Compression = comp
	r := start(t, opts)
	var all []flow.Record
	for i := 0; i < 8; i++ {
		recs := records(uint64(i), 1000)
		// One record with no times at all, one with a time before
		// 1970 (not representable: it stays in the files only).
		recs = append(recs, flow.Record{Src: recs[0].Src, Dst: recs[0].Dst, Exporter: recs[0].Exporter, Packets: 1, Octets: 64})
		f.add(recs)
		all = append(all, recs...)
		f.advance(40 * time.Second) // a new file every other round
	}
	bad := flow.Record{Src: all[0].Src, Dst: all[0].Dst, Exporter: all[0].Exporter, End: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), Packets: 1}
	f.add([]flow.Record{bad})
	f.close()
	r.finish(t)
	c := client(t, url)
	sameRecords(t, c, all)
	st := r.s.Stats()
	t.Logf("stats: %+v", st)
	if st.Unrepresentable != 1 || st.Duplicates != 0 || st.Errors != 0 {
		t.Errorf("stats %+v: want 1 unrepresentable row, no duplicates, no errors", st)
	}
	if gz := comp == CompressGzip; st.RawBytes == 0 || gz != (st.Bytes < st.RawBytes) || !gz && st.Bytes != st.RawBytes {
		t.Errorf("%s: %d bytes sent for %d bytes of rows", comp, st.Bytes, st.RawBytes)
	}
	// The records without times are at the time their file was received.
	if got := query(t, c, "SELECT count() FROM "+db+".flows WHERE flow_end = 0 AND toStartOfMinute(time) = time"); got != "8" {
		t.Errorf("records without times: %s at their file's slot, want 8", got)
	}
	// A new shipper on the same checkpoint ships nothing again.
	again := start(t, opts)
	again.finish(t)
	if st := again.s.Stats(); st.Rows != 0 {
		t.Errorf("second run inserted %d rows", st.Rows)
	}
	sameRecords(t, c, all)
}

// TestKilledBetweenInsertAndCheckpoint stops the shipper right after
// ClickHouse acknowledged an insert and before the checkpoint recorded
// it, as a kill -9 there would, then starts a new one on the same
// checkpoint: every record is there once, and the new shipper says it
// found the blocks and did not send them again.
func TestKilledBetweenInsertAndCheckpoint(t *testing.T) {
	url := chtest.Shared(t).URL("kflow_killed")
	dropDB(t, url)
	dir := t.TempDir()
	f := newFiles(t, dir, false)
	var all []flow.Record
	for i := 0; i < 4; i++ {
		recs := records(uint64(i), 2000)
		f.add(recs)
		all = append(all, recs...)
	}
	// The writer is not closed: the collector dies with the shipper and
	// leaves its .current file.
	opts := shipperOpts(dir, url)
	inserts := 0
	dead := make(chan struct{})
	opts.AfterInsert = func() {
		inserts++
		if inserts == 2 {
			close(dead)
			runtime.Goexit() // the shipper's goroutine ends here, as the process would
		}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	select {
	case <-dead:
	case <-time.After(2 * time.Minute):
		t.Fatal("no second insert")
	}
	// What the dead shipper left: blocks sent, not acknowledged.
	var cp checkpoint
	b, err := os.ReadFile(filepath.Join(dir, StateName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, f := range cp.Files {
		sent += len(f.Sent)
	}
	if sent == 0 {
		t.Fatalf("checkpoint records no blocks on their way: %s", b)
	}
	// The restarted collector recovers the .current file (renamed) and
	// opens a new one of the same name in the same slot.
	f2 := newFilesAt(t, dir, false, f.clock()) // the clock went on; the slot is the same
	more := records(9, 500)
	f2.add(more)
	r := start(t, shipperOpts(dir, url))
	c := client(t, url)
	waitFor(t, "the recovered file and the new one shipped", func() bool {
		return query(t, c, "SELECT count() FROM kflow_killed.flows") == fmt.Sprint(len(all)+len(more))
	})
	all = append(all, more...)
	f2.close()
	r.finish(t)
	sameRecords(t, client(t, url), all)
	if st := r.s.Stats(); st.Duplicates == 0 || r.count(EventDuplicates) == 0 {
		t.Errorf("the new shipper did not find the acknowledged blocks: %+v", st)
	}
}

// TestClickHouseDown stops ClickHouse under a steady stream of records
// for a while, then starts it again: every record arrives once.
func TestClickHouseDown(t *testing.T) {
	srv := chtest.Start(t, chtest.Options{})
	url := srv.URL("kflow")
	dir := t.TempDir()
	f := newFiles(t, dir, false)
	r := start(t, shipperOpts(dir, url))
	var all []flow.Record
	write := func(rounds int) {
		for i := 0; i < rounds; i++ {
			recs := records(uint64(len(all)), 200)
			f.add(recs)
			all = append(all, recs...)
			f.advance(15 * time.Second)
			time.Sleep(20 * time.Millisecond)
		}
	}
	write(10)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	write(20)
	if st := r.s.Stats(); st.Errors == 0 {
		t.Logf("no failure seen while ClickHouse was down (the shipper may not have tried): %+v", st)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	write(10)
	f.close()
	r.finish(t)
	sameRecords(t, client(t, url), all)
	st := r.s.Stats()
	t.Logf("stats: %+v", st)
	if st.Errors == 0 || r.count(EventRecovered) == 0 {
		t.Errorf("ClickHouse was down but the shipper saw no failure: %+v", st)
	}
}

// TestRejectedInserts breaks the schema under the shipper twice: a column
// of flows dropped (inserts refused: nothing lands), then a column of a
// view's target dropped (inserts refused after the rows landed in flows).
// The error is clear, the checkpoint holds, and once the schema is
// mended every record is there once.
func TestRejectedInserts(t *testing.T) {
	url := chtest.Shared(t).URL("kflow_rejected")
	dropDB(t, url)
	c := client(t, url)
	dir := t.TempDir()
	f := newFiles(t, dir, false)
	r := start(t, shipperOpts(dir, url))
	var all []flow.Record
	add := func(seed uint64) {
		recs := records(seed, 1000)
		f.add(recs)
		all = append(all, recs...)
	}
	waitFor(t, "schema made", func() bool { return r.s.Stats().Ready })

	exec := func(q string) {
		t.Helper()
		if err := c.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, breakSQL, mendSQL, errText string
		// Every retry fails until mended: the checkpoint must not move.
		// (When the view fails, the rows are in flows: the retry finds
		// them and moves on.)
		holds bool
	}{
		{"flows column dropped", "ALTER TABLE kflow_rejected.flows DROP COLUMN tos", "ALTER TABLE kflow_rejected.flows ADD COLUMN tos UInt8 AFTER tcp_flags", "tos", true},
		{"view target column dropped", "ALTER TABLE kflow_rejected.flows_1m DROP COLUMN flows", "ALTER TABLE kflow_rejected.flows_1m ADD COLUMN flows UInt64", "flows_1m_mv", false},
	} {
		// Dropping a column drops its data: the flows column is
		// dropped while flows is empty.
		exec(tt.breakSQL)
		errorsBefore, shipped := r.s.Stats().Errors, len(all)
		held := offsets(t, dir)
		add(uint64(10 + len(all)))
		waitFor(t, tt.name+": a refused insert", func() bool { return r.s.Stats().Errors > errorsBefore })
		st := r.s.Stats()
		t.Logf("%s: %s", tt.name, st.LastError)
		if !strings.Contains(st.LastError, tt.errText) {
			t.Errorf("%s: error %q does not name %q", tt.name, st.LastError, tt.errText)
		}
		if st.Rows != uint64(shipped) {
			t.Errorf("%s: %d rows acknowledged while refused, want %d", tt.name, st.Rows, shipped)
		}
		if tt.holds {
			// A few more refused retries.
			n := r.s.Stats().Errors
			waitFor(t, tt.name+": retries", func() bool { return r.s.Stats().Errors >= n+3 })
		}
		if got := offsets(t, dir); tt.holds && !maps.Equal(got, held) {
			t.Errorf("%s: the checkpoint moved while inserts were refused: %v, was %v", tt.name, got, held)
		}
		exec(tt.mendSQL)
		waitFor(t, tt.name+": shipping again", func() bool {
			return r.s.Stats().LastError == "" && r.s.Stats().Rows+r.s.Stats().Duplicates >= uint64(len(all))
		})
	}
	f.close()
	r.finish(t)
	rows := stored(t, c)
	if len(rows) != len(all) {
		t.Fatalf("flows holds %d rows, want %d", len(rows), len(all))
	}
	if st := r.s.Stats(); st.Duplicates == 0 {
		t.Errorf("the rows that landed before the view failed were not found: %+v", st)
	}
	// flows holds every record once; the per-minute sums miss the batch
	// the broken view refused (ClickHouse wrote it to flows only).
	sameFlows(t, rows, all)
}

// offsets returns the checkpoint's file offsets.
func offsets(t *testing.T, dir string) map[int64]int64 {
	t.Helper()
	cp, err := loadCheckpoint(filepath.Join(dir, StateName))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int64{}
	for _, f := range cp.Files {
		out[f.Created] = f.Offset
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a hang guard only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2 minutes", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRetentionUnshipped removes a file that was not shipped: the shipper
// says so.
func TestRetentionUnshipped(t *testing.T) {
	dir := t.TempDir()
	f := newFiles(t, dir, false)
	f.add(records(1, 100))
	f.close()
	// A server that does not answer: nothing is shipped.
	s, err := New(shipperOpts(dir, "http://127.0.0.1:1/kflow"))
	if err != nil {
		t.Fatal(err)
	}
	removed, err := flowfile.Expire(dir, flowfile.ExpireOptions{MaxBytes: 1, Location: time.UTC, Removing: s.Expiring})
	if err != nil || len(removed) != 1 {
		t.Fatalf("expire: %v %v", removed, err)
	}
	if st := s.Stats(); st.UnshippedFiles != 1 || st.UnshippedBytes != uint64(removed[0].Size) {
		t.Errorf("stats after removing an unshipped file: %+v", st)
	}
}

// TestShipSources ships the main directory and a named exporter's
// directory inside it (the collector's --source): each file once.
func TestShipSources(t *testing.T) {
	url := chtest.Shared(t).URL("kflow_sources")
	dropDB(t, url)
	dir := t.TempDir()
	srcDir := filepath.Join(dir, "router-a")
	main := newFiles(t, dir, false)
	src := newFiles(t, srcDir, false)
	recs := records(1, 2000)
	main.add(recs[:1000])
	src.add(recs[1000:])
	main.close()
	src.close()
	opts := shipperOpts(dir, url)
	opts.Sources = []Source{{Dir: srcDir, Key: "198.18.255.9"}}
	r := start(t, opts)
	r.finish(t)
	sameRecords(t, client(t, url), recs)
	if got := query(t, client(t, url), "SELECT count(DISTINCT block_id) FROM kflow_sources.flows"); got != "4" {
		t.Errorf("%s distinct blocks, want 4 (2 files of 2 blocks)", got)
	}
}

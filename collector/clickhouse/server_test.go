// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// testClient connects to the shared server with a database of the test's
// own.
func testClient(t *testing.T, db string) (*Client, *Schema) {
	t.Helper()
	s := chtest.Shared(t)
	c, err := NewClient(s.URL(db), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	return c, &Schema{Version: v, Database: db, Retention: DefaultRetention}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func queryString(t *testing.T, c *Client, q string) string {
	t.Helper()
	b, err := c.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestSchemaOnServer makes the schema, inserts every field of flow
// records compressed, reads them back exactly, and checks the sums the
// views made.
func TestSchemaOnServer(t *testing.T) {
	c, s := testClient(t, "kflow_schema")
	ctx := context.Background()
	a, err := Migrate(ctx, c, s, "test")
	if err != nil {
		t.Fatal(err)
	}
	if a.From != 0 || a.To != SchemaVersion() {
		t.Fatalf("first migrate: %+v", a)
	}
	if a, err = Migrate(ctx, c, s, "test"); err != nil || a.From != SchemaVersion() || len(a.Migrations) != 0 {
		t.Fatalf("second migrate: %+v %v", a, err)
	}
	received := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	var recs []flow.Record
	var body []byte
	for i := 0; i < 100; i++ {
		recs = append(recs, fullRecord(i, i%3 == 0))
		if p := cgroupPaths[i%len(cgroupPaths)]; p != "" {
			recs[i].CgroupID, recs[i].Cgroup = uint64(i), p
		}
		if body, err = AppendRow(body, &recs[i], received, uint64(i/10)); err != nil {
			t.Fatal(err)
		}
		body = AppendPosition(body, Position{})
		body = AppendCgroup(body, &recs[i])
	}
	if err := c.Insert(ctx, TableFlows, InsertColumns(), gz(t, body), true); err != nil {
		t.Fatal(err)
	}
	out, err := c.Query(ctx, fmt.Sprintf("SELECT %s FROM %s.flows ORDER BY flow_start, src FORMAT RowBinary", strings.Join(RecordColumns(), ", "), s.Database))
	if err != nil {
		t.Fatal(err)
	}
	rows, n, err := DecodeRecords(out)
	if err != nil || n != len(out) {
		t.Fatalf("%d of %d bytes decoded: %v", n, len(out), err)
	}
	// The names the paths show, as stored: 20 records of each path.
	if got, want := queryString(t, c, fmt.Sprintf("SELECT concat(unit, '|', container, '|', pod) AS n, count() FROM %s.flows GROUP BY n ORDER BY n", s.Database)),
		"docker-"+testContainer+".scope|"+testContainer+"|\t20\n"+
			"nginx.service||\t20\n"+
			"|"+testContainer+"|"+testPod+"\t20\n"+
			"||\t40"; got != want {
		t.Errorf("unit, container, pod:\n%s\nwant\n%s", got, want)
	}
	if len(rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(rows), len(recs))
	}
	for i := range rows {
		if rows[i].Record != recs[i] || rows[i].Block != uint64(i/10) {
			t.Errorf("row %d:\n got %+v block %d\nwant %+v", i, rows[i].Record, rows[i].Block, recs[i])
		}
	}
	var packets, bytes uint64
	for _, r := range recs {
		packets += r.Packets
		bytes += r.Octets
	}
	want := fmt.Sprintf("%d\t%d\t%d", packets, bytes, len(recs))
	for _, table := range []string{TableMinute, TableHour} {
		got := queryString(t, c, fmt.Sprintf("SELECT sum(packets), sum(bytes), sum(flows) FROM %s.%s", s.Database, table))
		if got != want {
			t.Errorf("%s: %s, want %s", table, got, want)
		}
	}
	// Retention: everything is a year old at now, so every partition goes.
	dropped, err := DropExpired(ctx, c, s, received.AddDate(2, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 3 {
		t.Errorf("dropped %+v, want one partition of each table", dropped)
	}
	if got := queryString(t, c, fmt.Sprintf("SELECT count() FROM %s.flows", s.Database)); got != "0" {
		t.Errorf("after retention: %s rows", got)
	}
}

// TestMigrations upgrades a version 1 schema with a migration that
// changes a consolidated table and its view together, and refuses a
// schema newer than kflow knows.
func TestMigrations(t *testing.T) {
	c, s := testClient(t, "kflow_migrate")
	ctx := context.Background()
	if _, err := migrate(ctx, c, s, migrations[:1], "test"); err != nil {
		t.Fatal(err)
	}
	insert := func(tos uint8, block uint64) {
		t.Helper()
		r := fullRecord(int(block), false)
		r.TOS = tos
		b, err := AppendRow(nil, &r, r.End, block)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Insert(ctx, TableFlows, FlowColumns(), b, false); err != nil {
			t.Fatal(err)
		}
	}
	insert(4, 1)
	v2 := append(migrations[:1:1], Migration{Version: 2, Summary: "tos in the per-minute sums", Steps: func(s *Schema) []Step {
		return []Step{
			{SQL: "DROP TABLE IF EXISTS " + s.name(viewMinute)},
			AddColumn(s, TableMinute, "tos", "UInt8", "dst_as"),
			{SQL: "CREATE MATERIALIZED VIEW IF NOT EXISTS " + s.name(viewMinute) + " TO " + s.name(TableMinute) +
				" AS SELECT toStartOfMinute(time) AS time, toDateTime(0, 'UTC') AS end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as, tos," +
				" sum(packets) AS packets, sum(bytes) AS bytes, count() AS flows FROM " + s.name(TableFlows) +
				" GROUP BY time, end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as, tos"},
		}
	}})
	// A first attempt that stopped after adding the column: the rerun
	// skips what is done.
	if err := runSteps(ctx, c, v2[1].Steps(s)[:2]); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second run changes nothing
		a, err := migrate(ctx, c, s, v2, "test")
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 2}[i]; a.From != want || a.To != 2 {
			t.Fatalf("run %d: %+v", i, a)
		}
	}
	insert(8, 2)
	if got := queryString(t, c, fmt.Sprintf("SELECT tos, sum(flows) FROM %s.%s GROUP BY tos ORDER BY tos", s.Database, TableMinute)); got != "0\t1\n8\t1" {
		t.Errorf("per-minute sums by tos after the migration:\n%s", got)
	}
	_, err := migrate(ctx, c, s, migrations[:1], "test")
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("schema version 2 with a kflow that knows 1: %v", err)
	}
}

// TestFailedInsertWritesNothing checks what the shipper's idempotence
// rests on: an insert of at most MaxInsertRows rows that fails (here a
// row cut short at the very end) writes none of its rows.
func TestFailedInsertWritesNothing(t *testing.T) {
	c, s := testClient(t, "kflow_atomic")
	ctx := context.Background()
	if err := c.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.Database); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "CREATE TABLE "+s.Database+".t (d Date, a UInt64) ENGINE = MergeTree PARTITION BY d ORDER BY a"); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 0, MaxInsertRows*10)
	for i := 0; i < MaxInsertRows; i++ {
		body = binary.LittleEndian.AppendUint16(body, 20000)
		body = binary.LittleEndian.AppendUint64(body, uint64(i))
	}
	err := c.Insert(ctx, "t", []string{"d", "a"}, gz(t, body[:len(body)-3]), true)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("insert with a cut last row: %v", err)
	}
	t.Logf("insert with a cut last row: %v", err)
	if got := queryString(t, c, "SELECT count() FROM "+s.Database+".t"); got != "0" {
		t.Fatalf("a failed insert of %d rows wrote %s of them", MaxInsertRows, got)
	}
	began := time.Now()
	if err := c.Insert(ctx, "t", []string{"d", "a"}, gz(t, body), true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d two-column rows inserted in %v", MaxInsertRows, time.Since(began))
	if got := queryString(t, c, "SELECT count() FROM "+s.Database+".t"); got != fmt.Sprint(MaxInsertRows) {
		t.Fatalf("%s rows, want %d", got, MaxInsertRows)
	}
}

// TestMigrateStartKeyed upgrades a version 1 schema (made with the
// version 1 DDL, testdata/schema-v1-18.16.sql) holding flows: the
// consolidated tables are rebuilt keyed by start bucket and end bound,
// the version 1 ones kept, and the new views feed the new tables.
func TestMigrateStartKeyed(t *testing.T) {
	c, s := testClient(t, "kflow_v1")
	ctx := context.Background()
	ddl, err := os.ReadFile("testdata/schema-v1-18.16.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range strings.Split(strings.TrimSpace(string(ddl)), ";\n") {
		q = strings.Replace(q, "DATABASE IF NOT EXISTS kflow", "DATABASE IF NOT EXISTS "+s.Database, 1)
		if err := c.Exec(ctx, strings.ReplaceAll(strings.TrimSuffix(q, ";"), "kflow.", s.Database+".")); err != nil {
			t.Fatal(err)
		}
	}
	if err := recordVersion(ctx, c, s, 1, "v1"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 14, 9, 59, 30, 0, time.UTC)
	insert := func(start, end time.Time, block uint64) {
		t.Helper()
		r := flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: 6,
			Packets: 2, Octets: 100, Start: start, End: end}
		b, err := AppendRow(nil, &r, t0, block)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Insert(ctx, TableFlows, FlowColumns(), b, false); err != nil {
			t.Fatal(err)
		}
	}
	// Starts in minute 9:59, ends in 10:00 (bound 10:01) and at 10:01:00
	// exactly (bound 10:01); no start (kept under its end's bucket, bound
	// past any window).
	insert(t0, t0.Add(40*time.Second), 1)
	insert(t0, t0.Add(90*time.Second), 2)
	insert(time.Time{}, t0.Add(time.Second), 3)
	a, err := Migrate(ctx, c, s, "test")
	if err != nil {
		t.Fatal(err)
	}
	if a.From != 1 || a.To != SchemaVersion() {
		t.Fatalf("migrate: %+v", a)
	}
	insert(t0.Add(time.Minute), t0.Add(time.Minute+500*time.Millisecond), 4) // after: through the new view
	for _, tt := range []struct{ table, want string }{
		{TableMinute, "2025-03-14 09:59:00\t2025-03-14 10:01:00\t2\n" +
			"2025-03-14 09:59:00\t2100-01-01 00:00:00\t1\n" +
			"2025-03-14 10:00:00\t2025-03-14 10:01:00\t1"},
		{TableHour, "2025-03-14 09:00:00\t2025-03-14 11:00:00\t2\n" +
			"2025-03-14 09:00:00\t2100-01-01 00:00:00\t1\n" +
			"2025-03-14 10:00:00\t2025-03-14 11:00:00\t1"},
		{TableMinute + "_v1", "2025-03-14 09:59:00\t1\n2025-03-14 10:00:00\t1\n2025-03-14 10:01:00\t1"},
	} {
		q := fmt.Sprintf("SELECT time, end_bound, sum(flows) FROM %s.%s GROUP BY time, end_bound ORDER BY time, end_bound", s.Database, tt.table)
		if strings.HasSuffix(tt.table, "_v1") {
			q = fmt.Sprintf("SELECT time, sum(flows) FROM %s.%s GROUP BY time ORDER BY time", s.Database, tt.table)
		}
		if got := queryString(t, c, q); got != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.table, got, tt.want)
		}
	}
}

// TestMigrateCgroups upgrades a version 2 schema (made with the version
// 2 DDL, testdata/schema-v2-18.16.sql) holding a flow: the cgroup columns
// are added, the row shipped before reads as a record without a cgroup,
// and rows with cgroups go in through the unchanged views.
func TestMigrateCgroups(t *testing.T) {
	c, s := testClient(t, "kflow_v2")
	ctx := context.Background()
	ddl, err := os.ReadFile("testdata/schema-v2-18.16.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range strings.Split(strings.TrimSpace(string(ddl)), ";\n") {
		q = strings.Replace(q, "DATABASE IF NOT EXISTS kflow", "DATABASE IF NOT EXISTS "+s.Database, 1)
		if err := c.Exec(ctx, strings.ReplaceAll(strings.TrimSuffix(q, ";"), "kflow.", s.Database+".")); err != nil {
			t.Fatal(err)
		}
	}
	if err := recordVersion(ctx, c, s, 2, "v2"); err != nil {
		t.Fatal(err)
	}
	received := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	old := fullRecord(0, false)
	b, err := AppendRow(nil, &old, received, 1)
	if err != nil {
		t.Fatal(err)
	}
	b = AppendPosition(b, Position{Slot: received, File: "/flows/kflow.202503141000", Offset: 4096})
	if err := c.Insert(ctx, TableFlows, append(FlowColumns(), PositionColumns()...), b, false); err != nil {
		t.Fatal(err)
	}
	a, err := Migrate(ctx, c, s, "test")
	if err != nil {
		t.Fatal(err)
	}
	if a.From != 2 || a.To != SchemaVersion() || a.To != 3 {
		t.Fatalf("migrate: %+v", a)
	}
	// Run again with the version unrecorded: every step is skipped or
	// harmless (a failure midway runs them all again).
	if err := runSteps(ctx, c, cgroups(s)); err != nil {
		t.Fatalf("migration run twice: %v", err)
	}
	added := fullRecord(1, false)
	added.CgroupID, added.Cgroup = 77, cgroupPaths[2]
	if b, err = AppendRow(nil, &added, received, 2); err != nil {
		t.Fatal(err)
	}
	b = AppendCgroup(AppendPosition(b, Position{}), &added)
	if err := c.Insert(ctx, TableFlows, InsertColumns(), b, false); err != nil {
		t.Fatal(err)
	}
	out, err := c.Query(ctx, fmt.Sprintf("SELECT %s FROM %s.flows ORDER BY block_id FORMAT RowBinary", strings.Join(RecordColumns(), ", "), s.Database))
	if err != nil {
		t.Fatal(err)
	}
	rows, n, err := DecodeRecords(out)
	if err != nil || n != len(out) || len(rows) != 2 {
		t.Fatalf("%d rows, %d of %d bytes decoded: %v", len(rows), n, len(out), err)
	}
	if rows[0].Record != old || rows[1].Record != added {
		t.Errorf("read back:\n%+v\n%+v\nwant\n%+v\n%+v", rows[0].Record, rows[1].Record, old, added)
	}
	for q, want := range map[string]string{
		"SELECT block_id, concat(unit, '|', container, '|', pod) FROM %s.flows ORDER BY block_id": "1\t||\n2\tdocker-" + testContainer + ".scope|" + testContainer + "|",
		"SELECT sum(flows) FROM %s.flows_1m":                                                      "2",
		"SELECT sum(flows) FROM %s.flows_1h":                                                      "2",
		"SELECT max(version) FROM %s.schema_version":                                              "3",
	} {
		if got := queryString(t, c, fmt.Sprintf(q, s.Database)); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", q, got, want)
		}
	}
}

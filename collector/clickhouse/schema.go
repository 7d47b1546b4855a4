// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"fmt"
	"strings"
	"time"
)

// Tables and views of kflow's schema.
const (
	TableFlows   = "flows"          // every record
	TableMinute  = "flows_1m"       // per minute sums (SummingMergeTree)
	TableHour    = "flows_1h"       // per hour sums
	TableVersion = "schema_version" // migrations applied
	viewMinute   = "flows_1m_mv"
	viewHour     = "flows_1h_mv"
	// DistSuffix names the Distributed table over a local table when the
	// schema has a cluster: flows_dist reads every shard's flows.
	DistSuffix = "_dist"
)

// Day is the granularity of retention.
const Day = 24 * time.Hour

// Retention is how long each table keeps rows, in whole days (0: for
// ever). The flows and per-minute tables drop whole days, the per-hour
// table whole months.
type Retention struct {
	Flows, Minute, Hour time.Duration
}

// DefaultRetention: raw flows 15 days, per-minute sums 7 days, per-hour
// sums a year (akvorado keeps about the same).
var DefaultRetention = Retention{Flows: 15 * Day, Minute: 7 * Day, Hour: 365 * Day}

// Schema is kflow's schema on one server: the dialect follows the
// server's version.
type Schema struct {
	Version   Version
	Database  string
	Cluster   string // when set: Distributed tables (DistSuffix) over it
	Retention Retention
}

// Validate checks names and retention.
func (s *Schema) Validate() error {
	if !identRE().MatchString(s.Database) {
		return fmt.Errorf("clickhouse schema: database %q: want letters, digits and _", s.Database)
	}
	if s.Cluster != "" && !identRE().MatchString(s.Cluster) {
		return fmt.Errorf("clickhouse schema: cluster %q: want letters, digits and _", s.Cluster)
	}
	for _, r := range []time.Duration{s.Retention.Flows, s.Retention.Minute, s.Retention.Hour} {
		if r < 0 || r%Day != 0 {
			return fmt.Errorf("clickhouse schema: retention %v: want whole days", r)
		}
	}
	return nil
}

// Consolidated tables hold sums per time bucket over the dimensions a
// traffic graph splits by: exporter, observation domain, interfaces,
// direction, IP version, protocol, AS numbers. Addresses and ports stay
// out (as in akvorado): their cardinality would make the sums as large
// as the flows; questions about hosts and ports read the flows table.
var consolidatedDims = flowColumnsNamed("exporter", "observation_domain", "in_if", "out_if", "direction",
	"ip_version", "proto", "src_as", "dst_as")

// flowColumnsNamed returns the flows columns of those names, in that order.
func flowColumnsNamed(names ...string) []column {
	var out []column
	for _, n := range names {
		for _, c := range flowColumns {
			if c.name == n {
				out = append(out, c)
			}
		}
	}
	if len(out) != len(names) {
		panic("clickhouse: consolidated dimension not among the flows columns")
	}
	return out
}

// consolidated describes one consolidated table.
//
// Its rows are keyed by the bucket the records start in (time) and the
// bucket boundary their end is at or before (end_bound: the end rounded
// up to the bucket), so that a query whose window and step are whole
// buckets selects exactly the records nfdump's -t selects (start at or
// after the window's start, end at or before its end) and counts each in
// the bucket of its start, as the flow-file engine does. A record without
// a start is kept under its row time with an end_bound past any window:
// no window selects it (a window always has a start, which such a
// record fails).
type consolidated struct {
	table, view string
	bucket      string // the function that truncates time
	seconds     int    // the bucket's length
	partition   string // the partition expression
	retention   func(Retention) time.Duration
}

var consolidations = []consolidated{
	{TableMinute, viewMinute, "toStartOfMinute", 60, "toDate(time)", func(r Retention) time.Duration { return r.Minute }},
	{TableHour, viewHour, "toStartOfHour", 3600, "toYYYYMM(time)", func(r Retention) time.Duration { return r.Hour }},
}

// Consolidation is what a query needs to know of a consolidated table.
type Consolidation struct {
	Table string
	Step  time.Duration // its bucket
	Dims  []string      // the flows columns it keeps
}

// Consolidations lists the consolidated tables, finest first.
func Consolidations() []Consolidation {
	var out []Consolidation
	for _, c := range consolidations {
		var dims []string
		for _, d := range consolidatedDims {
			dims = append(dims, d.name)
		}
		out = append(out, Consolidation{Table: c.table, Step: time.Duration(c.seconds) * time.Second, Dims: dims})
	}
	return out
}

// noStart is true for a flows row whose record has no start.
const noStart = "toUInt32(flow_start) = 0 AND flow_start_ns = 0"

// NoEndBound is the end_bound of records without a start: 2100-01-01,
// past any window a query asks (18.16 wraps times after 2105 around).
const NoEndBound = "toDateTime(4102444800, 'UTC')"

func (s *Schema) modern() bool { return s.Version.Modern() }

func (s *Schema) typ(c column) string {
	if s.modern() {
		return c.modern
	}
	return c.legacy
}

func (s *Schema) name(table string) string { return s.Database + "." + table }

// ttl returns the TTL clause for a retention (modern servers; older ones
// drop partitions, see DropExpired).
func (s *Schema) ttl(r time.Duration) string {
	if !s.modern() || r == 0 {
		return ""
	}
	return fmt.Sprintf("\nTTL time + INTERVAL %d DAY", r/Day)
}

func (s *Schema) settings(r time.Duration) string {
	if !s.modern() || r == 0 {
		return ""
	}
	return "\nSETTINGS ttl_only_drop_parts = 1"
}

// versionTable is the DDL of the migrations table.
func (s *Schema) versionTable() string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (\n    version UInt32,\n    applied DateTime('UTC'),\n    kflow String\n) ENGINE = TinyLog", s.name(TableVersion))
}

func (s *Schema) flowsTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", s.name(TableFlows))
	cols := append(append(append([]column(nil), flowColumns...), positionColumns...), cgroupColumns...)
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %s %s%s\n", c.name, s.typ(c), sep)
	}
	b.WriteString(") ENGINE = MergeTree\nPARTITION BY toDate(time)\n")
	// Time first (five-minute buckets), then addresses: a time range
	// reads its granules, a host inside it is found by the index.
	b.WriteString("ORDER BY (toStartOfFiveMinute(time), src, dst)")
	b.WriteString(s.ttl(s.Retention.Flows))
	b.WriteString(s.settings(s.Retention.Flows))
	return b.String()
}

func (s *Schema) consolidatedTable(c consolidated) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n    time DateTime('UTC'),\n    end_bound DateTime('UTC'),\n", s.name(c.table))
	var dims []string
	for _, d := range consolidatedDims {
		fmt.Fprintf(&b, "    %s %s,\n", d.name, s.typ(d))
		dims = append(dims, d.name)
	}
	b.WriteString("    packets UInt64,\n    bytes UInt64,\n    flows UInt64\n")
	fmt.Fprintf(&b, ") ENGINE = SummingMergeTree((packets, bytes, flows))\nPARTITION BY %s\n", c.partition)
	fmt.Fprintf(&b, "ORDER BY (time, end_bound, %s)", strings.Join(dims, ", "))
	b.WriteString(s.ttl(c.retention(s.Retention)))
	b.WriteString(s.settings(c.retention(s.Retention)))
	return b.String()
}

// consolidatedColumns are a consolidated table's columns in order.
func consolidatedColumns() []string {
	cols := []string{"time", "end_bound"}
	for _, d := range consolidatedDims {
		cols = append(cols, d.name)
	}
	return append(cols, "packets", "bytes", "flows")
}

func (s *Schema) consolidatedView(c consolidated) string {
	return fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s TO %s AS\n%s", s.name(c.view), s.name(c.table), s.consolidatedSelect(c))
}

// consolidatedSelect is the SELECT over flows that makes a consolidated
// table's rows: its view's, and the backfill of a migration.
func (s *Schema) consolidatedSelect(c consolidated) string {
	var dims []string
	for _, d := range consolidatedDims {
		dims = append(dims, d.name)
	}
	d := strings.Join(dims, ", ")
	start := fmt.Sprintf("%s(if(%s, time, flow_start))", c.bucket, noStart)
	end := fmt.Sprintf("if(%s, %s, %s(flow_end) + %d * (flow_end != %s(flow_end) OR flow_end_ns != 0))",
		noStart, NoEndBound, c.bucket, c.seconds, c.bucket)
	return fmt.Sprintf("SELECT %s AS time, %s AS end_bound, %s,\n    sum(packets) AS packets, sum(bytes) AS bytes, count() AS flows\nFROM %s\nGROUP BY time, end_bound, %s",
		start, end, d, s.name(TableFlows), d)
}

func (s *Schema) distTable(table string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s AS %s\nENGINE = Distributed(%s, %s, %s, rand())",
		s.name(table+DistSuffix), s.name(table), s.Cluster, s.Database, table)
}

// Statements returns the DDL of the whole schema at the latest version,
// in order, each safe to run again (IF NOT EXISTS): what the sink runs to
// create whatever is missing, and what "kflow clickhouse schema" prints.
func (s *Schema) Statements() []string {
	out := []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", s.Database),
		s.versionTable(),
		s.flowsTable(),
	}
	for _, c := range consolidations {
		// The target before its view: a view whose target is missing
		// fails every insert into flows.
		out = append(out, s.consolidatedTable(c), s.consolidatedView(c))
	}
	if s.Cluster != "" {
		for _, t := range []string{TableFlows, TableMinute, TableHour} {
			out = append(out, s.distTable(t))
		}
	}
	return out
}

// SQL returns Statements as one script.
func (s *Schema) SQL() string {
	return strings.Join(s.Statements(), ";\n\n") + ";\n"
}

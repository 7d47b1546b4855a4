// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/query"
)

// DefaultMaxPairs bounds the connections (five-tuples) a bidirectional
// listing pairs: pairing reads them all into memory.
const DefaultMaxPairs = 2_000_000

// Backend answers query requests from kflow's schema on one ClickHouse
// server: its local tables, or the Distributed ones (flows_dist, ...)
// when the schema has them, so that a query on any node of a cluster
// reads every shard.
type Backend struct {
	c *clickhouse.Client
	// MaxPairs bounds the five-tuples of a bidirectional listing
	// (DefaultMaxPairs when 0).
	MaxPairs int

	mu    sync.Mutex
	ready bool
	d     dialect
	dist  bool // the Distributed tables exist
	// sums: the consolidated tables are keyed by start and end bound
	// (schema version 2 on): series may read them.
	sums bool
}

// New returns a backend over the client's database. It asks the server
// nothing until the first query.
func New(c *clickhouse.Client) *Backend { return &Backend{c: c} }

// Open returns a backend over the database a URL names
// (http://user:pass@host:8123/kflow).
func Open(rawURL string) (*Backend, error) {
	c, err := clickhouse.NewClient(rawURL, nil)
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// String names the server and database.
func (b *Backend) String() string { return b.c.String() }

// prepare reads the server's version and what the schema holds, once.
func (b *Backend) prepare(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready {
		return nil
	}
	v, err := b.c.Version(ctx)
	if err != nil {
		return err
	}
	db := b.c.Database()
	rows, err := b.c.QueryRows(ctx, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s'", db))
	if err != nil {
		return err
	}
	tables := map[string]bool{}
	for _, r := range rows {
		tables[r[0]] = true
	}
	if !tables[clickhouse.TableFlows] {
		return fmt.Errorf("clickhouse %s: no %s table: nothing shipped there yet (kflow collector run --clickhouse)", b.c, clickhouse.TableFlows)
	}
	version := 0
	if tables[clickhouse.TableVersion] {
		out, err := b.c.Query(ctx, fmt.Sprintf("SELECT max(version) FROM %s.%s", db, clickhouse.TableVersion))
		if err != nil {
			return err
		}
		version, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	b.d = dialect{modern: v.Modern()}
	b.dist = tables[clickhouse.TableFlows+clickhouse.DistSuffix]
	b.sums = version >= 2
	b.ready = true
	return nil
}

// table returns a table's name to read.
func (b *Backend) table(name string) string {
	if b.dist {
		name += clickhouse.DistSuffix
	}
	return b.c.Database() + "." + name
}

// source is what a request reads: a relation and a condition on it.
type source struct {
	from, where string
	table       bool // from is a table: the condition may be a PREWHERE
}

// cond is the source's condition clause: PREWHERE on a table (ClickHouse
// reads the other columns only of the rows that pass), else WHERE.
func (s source) cond() string {
	if s.table {
		return "PREWHERE " + s.where
	}
	return "WHERE " + s.where
}

// flowsSource returns the flows of the request: its window and filter,
// and with a limit (-c) the first records in file order.
func (b *Backend) flowsSource(ctx context.Context, req *query.Request) (source, error) {
	cond, _, err := where{d: b.d}.filterSQL(req.Filter)
	if err != nil {
		return source{}, err
	}
	s := source{from: b.table(clickhouse.TableFlows), where: windowSQL(req.Window) + " AND " + cond, table: true}
	if req.Limit == 0 {
		return s, nil
	}
	// The first records in file order lie in files of slots up to the
	// limit-th's: reading only the slot column first spares reading every
	// column of every selected record.
	rows, err := b.rows(ctx, fmt.Sprintf("SELECT toUInt32(file_slot) FROM %s %s ORDER BY file_slot LIMIT %d, 1", s.from, s.cond(), req.Limit-1))
	if err != nil {
		return source{}, err
	}
	if len(rows) == 1 {
		c := cells{row: rows[0]}
		sec := c.u64()
		if c.err != nil {
			return source{}, c.err
		}
		s.where += fmt.Sprintf(" AND file_slot <= toDateTime(%d, 'UTC')", sec)
	}
	return source{from: fmt.Sprintf("(SELECT * FROM %s %s ORDER BY %s LIMIT %d)", s.from, s.cond(), recordOrder, req.Limit), where: "1"}, nil
}

// Query answers req.
func (b *Backend) Query(ctx context.Context, req *query.Request) (*query.Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	res := &query.Result{Kind: req.Kind()}
	var err error
	switch res.Kind {
	case query.KindSummary:
		err = b.summary(ctx, req, res)
	case query.KindStats:
		err = b.stats(ctx, req, res)
	case query.KindSeries:
		err = b.series(ctx, req, res)
		if err == nil {
			err = query.Overlays(ctx, b, req, res)
		}
	case query.KindAggregates:
		err = b.aggregates(ctx, req, res)
		if err == nil && req.Stream != nil {
			// The page's rows, streamed as the files' backend does.
			for i := range res.Rows {
				if err = req.Stream(&res.Rows[i]); err != nil {
					break
				}
			}
			res.Rows = nil
		}
	default:
		err = b.records(ctx, req, res)
	}
	if err != nil {
		return nil, err
	}
	res.Scan.Read, res.Scan.Passed = res.Total.Flows, res.Total.Flows
	res.Elapsed = time.Since(began)
	return res, nil
}

// total counts the records of s.
func (b *Backend) total(ctx context.Context, s source) (query.Counter, error) {
	rows, err := b.rows(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s", counterCols, s.from, s.where))
	if err != nil {
		return query.Counter{}, err
	}
	if len(rows) != 1 {
		return query.Counter{}, fmt.Errorf("clickhouse %s: total: %d rows", b.c, len(rows))
	}
	c := cells{row: rows[0]}
	t := c.counter()
	return t, c.err
}

// maxPlainQuery is below ClickHouse's default max_query_size (256 KiB)
// and max_ast_elements (50,000): longer queries (a filter's long lists of
// addresses) raise both for themselves. A read-only user (readonly=1)
// may not: such a query fails with ClickHouse's error.
const maxPlainQuery = 100 << 10

func settingsFor(q string) url.Values {
	if len(q) < maxPlainQuery {
		return nil
	}
	n := strconv.Itoa(len(q) + 1024)
	return url.Values{"max_query_size": {n}, "max_ast_elements": {n}, "max_expanded_ast_elements": {n}}
}

// rows runs a query and returns its TabSeparated rows (numbers only).
func (b *Backend) rows(ctx context.Context, q string) ([][]string, error) {
	body, err := b.c.QueryStream(ctx, q+"\nFORMAT TabSeparated", settingsFor(q))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var buf strings.Builder
	if _, err := io.Copy(&buf, body); err != nil {
		return nil, fmt.Errorf("clickhouse %s: read result: %w", b.c, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

// jsonResult is a JSONCompact answer: rows, and the rows there were
// before LIMIT (for GROUP BY ... ORDER BY ... LIMIT: the groups).
type jsonResult struct {
	Data   [][]json.RawMessage `json:"data"`
	Totals []json.RawMessage   `json:"totals"`
	Before *uint64             `json:"rows_before_limit_at_least"`
}

// grouped is the answer of a GROUP BY: its rows, the groups there were
// before LIMIT, and the totals row of WITH TOTALS (nil without).
type grouped struct {
	rows   [][]string
	groups int
	totals []string
}

// limited runs a query ending in LIMIT and returns its rows and the
// number of rows before the limit.
func (b *Backend) limited(ctx context.Context, q string) ([][]string, int, error) {
	g, err := b.group(ctx, q)
	return g.rows, g.groups, err
}

// group runs a GROUP BY query (with LIMIT, WITH TOTALS or not).
func (b *Backend) group(ctx context.Context, q string) (grouped, error) {
	body, err := b.c.QueryStream(ctx, q+"\nFORMAT JSONCompact", settingsFor(q))
	if err != nil {
		return grouped{}, err
	}
	defer body.Close()
	var buf strings.Builder
	if _, err := io.Copy(&buf, body); err != nil {
		return grouped{}, fmt.Errorf("clickhouse %s: read result: %w", b.c, err)
	}
	var r jsonResult
	if err := json.Unmarshal([]byte(buf.String()), &r); err != nil {
		return grouped{}, fmt.Errorf("clickhouse %s: result: %w", b.c, err)
	}
	cells := func(d []json.RawMessage) []string {
		out := make([]string, len(d))
		for j, v := range d {
			s := string(v)
			if u, err := strconv.Unquote(s); err == nil {
				s = u
			}
			out[j] = s
		}
		return out
	}
	g := grouped{rows: make([][]string, len(r.Data))}
	for i, d := range r.Data {
		g.rows[i] = cells(d)
	}
	if r.Totals != nil {
		g.totals = cells(r.Totals)
	}
	g.groups = len(g.rows)
	if r.Before != nil {
		g.groups = max(g.groups, int(*r.Before))
	}
	return g, nil
}

// limitSQL is LIMIT offset, top (top 0: all).
func limitSQL(offset, top int) string {
	switch {
	case top > 0:
		return fmt.Sprintf("LIMIT %d, %d", offset, top)
	case offset > 0:
		return fmt.Sprintf("LIMIT %d, 18446744073709551615", offset)
	}
	return ""
}

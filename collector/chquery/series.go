// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/query"
)

// Time series: per bucket and key, counts from the flows table or, when
// they answer exactly, from the coarsest consolidated table whose bucket
// divides the step. The top keys are ranked in SQL (by the unit's total,
// peak bucket or last bucket, ties by key as the file engine breaks
// them); a second query counts per bucket the top keys' records and the
// rest (Other); query.SeriesBuilder assembles the lines.

// sumsDims are the dimensions the consolidated tables keep.
var sumsDims = []query.Element{query.ElemProto, query.ElemInIf, query.ElemOutIf, query.ElemExporter, query.ElemDir}

// seriesSource is where a series' counts come from.
type seriesSource struct {
	source
	sums   bool   // a consolidated table: counts are sums of its rows
	bucket string // the SQL of a row's bucket index
}

// sumsTable returns the consolidated table that answers req exactly, if
// any: no limit, a filter and dimensions on the columns it keeps, and a
// window and step of whole buckets of it (then "starts at or after the
// window's start" is "its start bucket is", "ends at or before the
// window's end" is "its end bound is", and the series' bucket of a
// record is that of its start bucket).
func (b *Backend) sumsTable(req *query.Request) (string, time.Duration, string, bool) {
	if !b.sums || req.Limit != 0 {
		return "", 0, "", false
	}
	cond, ok, err := where{d: b.d, consolidated: true}.filterSQL(req.Filter)
	if err != nil || !ok {
		return "", 0, "", false
	}
	for _, d := range req.Series.Dims {
		if !slices.Contains(sumsDims, d.Element) {
			return "", 0, "", false
		}
	}
	step, _, _ := req.Series.Layout(req.Window)
	w := req.Window
	// Stored bounds stop before 2100 (clickhouse.NoEndBound).
	if w.To.Year() >= 2100 || w.From.Unix() < 0 {
		return "", 0, "", false
	}
	sums := clickhouse.Consolidations()
	for i := len(sums) - 1; i >= 0; i-- {
		t := sums[i]
		if step%t.Step == 0 && w.From.UnixNano()%int64(t.Step) == 0 && w.To.UnixNano()%int64(t.Step) == 0 {
			return t.Table, t.Step, cond, true
		}
	}
	return "", 0, "", false
}

func (b *Backend) seriesSource(ctx context.Context, req *query.Request) (seriesSource, error) {
	step, start, points := req.Series.Layout(req.Window)
	bucket := func(t string) string {
		return fmt.Sprintf("greatest(least(intDiv(%s - %d, %d), %d), 0)", t, start.UnixNano(), int64(step), points-1)
	}
	if table, _, cond, ok := b.sumsTable(req); ok {
		w := req.Window
		return seriesSource{
			source: source{from: b.table(table),
				where: fmt.Sprintf("time >= %s AND end_bound <= %s AND %s", timeLit(w.From), timeLit(w.To), cond)},
			sums:   true,
			bucket: bucket("toInt64(toUInt32(time)) * 1000000000"),
		}, nil
	}
	src, err := b.flowsSource(ctx, req)
	if err != nil {
		return seriesSource{}, err
	}
	// A record counts at its start, its end when it has none.
	return seriesSource{source: src, bucket: bucket("if(s != 0, s, e)")}, nil
}

// unitSQL is a unit's count of flows f, packets p and bytes b
// (query.Unit.Of; UInt64 arithmetic wraps as Go's does).
func unitSQL(u query.Unit, f, p, b string) string {
	switch u {
	case query.UnitL2Bits:
		return fmt.Sprintf("(%s + %d * %s) * 8", b, query.L2Overhead, p)
	case query.UnitPackets:
		return p
	case query.UnitFlows:
		return f
	}
	return b + " * 8"
}

// keyValues are the literals of a value's columns as its key gives
// them: addrKey's numbers, a number, or a string in hexadecimal.
func keyValues(v query.Value, k valueKey) []string {
	switch {
	case k.str:
		return []string{"'" + hexUpper(v.Str) + "'"}
	case !k.addr:
		return []string{fmt.Sprint(v.Num)}
	}
	fam := uint64(2)
	switch {
	case !v.Addr.IsValid():
		return []string{"0", "0", "0"}
	case v.Addr.Is4():
		fam = 1
	}
	b := v.Addr.As16()
	return []string{fmt.Sprint(fam), fmt.Sprint(binary.BigEndian.Uint64(b[:8])), fmt.Sprint(binary.BigEndian.Uint64(b[8:]))}
}

func (b *Backend) series(ctx context.Context, req *query.Request, res *query.Result) error {
	spec := req.Series
	_, _, points := spec.Layout(req.Window)
	src, err := b.seriesSource(ctx, req)
	if err != nil {
		return err
	}
	// The inner select: per row its key columns k0..., bucket i, and
	// counts f, p, b (and s, e on flows).
	var keys []valueKey
	var exprs, names []string
	for _, d := range spec.Dims {
		k, err := b.d.dimKey(d)
		if err != nil {
			return err
		}
		e, n := keyAliases(k, len(names))
		keys, exprs, names = append(keys, k), append(exprs, e...), append(names, n...)
	}
	// Per row: flows f0, packets p0, bytes b0, and on flows the start s
	// and end e (ns).
	cols := "1 AS f0, packets AS p0, bytes AS b0, " + startNs + " AS s, " + endNs + " AS e"
	span := "minIf(s, s != 0), max(e)"
	if src.sums {
		cols = "flows AS f0, packets AS p0, bytes AS b0"
		span = "0, 0"
	}
	sel := append(slices.Clone(exprs), cols, src.bucket+" AS i")
	rowsSQL := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(sel, ", "), src.from, src.where)

	// The lines: the keys asked, or the top ones.
	var lines [][]query.Value
	distinct := -1
	switch {
	case len(spec.Dims) == 0:
		lines = [][]query.Value{nil}
	case spec.Keys != nil:
		lines = spec.Keys
		n, err := b.rows(ctx, fmt.Sprintf("SELECT count() FROM (SELECT %s FROM (%s) GROUP BY %s)", strings.Join(names, ", "), rowsSQL, strings.Join(names, ", ")))
		if err != nil {
			return err
		}
		c := cells{row: n[0]}
		distinct = int(c.u64())
		if c.err != nil {
			return c.err
		}
	default:
		k := strings.Join(names, ", ")
		top := spec.Top
		if top == 0 {
			top = 10
		}
		from := "(" + rowsSQL + ")"
		var rank string
		switch spec.Rank {
		case query.RankPeak:
			// The largest bucket: per key and bucket first.
			from = fmt.Sprintf("(SELECT %s, i, %s AS v FROM %s GROUP BY %s, i)", k, unitSQL(spec.Unit, "sum(f0)", "sum(p0)", "sum(b0)"), from, k)
			rank = "max(v)"
		case query.RankLast:
			last := fmt.Sprintf("i = %d", points-1)
			rank = unitSQL(spec.Unit, "sumIf(f0, "+last+")", "sumIf(p0, "+last+")", "sumIf(b0, "+last+")")
		default:
			rank = unitSQL(spec.Unit, "sum(f0)", "sum(p0)", "sum(b0)")
		}
		q := fmt.Sprintf("SELECT %s FROM %s GROUP BY %s ORDER BY %s DESC, %s LIMIT %d", k, from, k, rank, k, top)
		rows, n, err := b.limited(ctx, q)
		if err != nil {
			return err
		}
		distinct = n
		for _, r := range rows {
			c := cells{row: r}
			var key []query.Value
			for _, kk := range keys {
				key = append(key, kk.read(&c))
			}
			if c.err != nil {
				return c.err
			}
			lines = append(lines, key)
		}
	}

	// Counts per bucket and line (0: the rest).
	var match []string
	for li, key := range lines {
		var conds []string
		ci := 0
		for di, v := range key {
			for _, x := range keyValues(v, keys[di]) {
				conds = append(conds, fmt.Sprintf("%s = %s", names[ci], x))
				ci++
			}
		}
		if len(conds) == 0 {
			conds = []string{"1"}
		}
		match = append(match, strings.Join(conds, " AND "), fmt.Sprint(li+1))
	}
	line := "0"
	if len(match) > 0 {
		line = "multiIf(" + strings.Join(match, ", ") + ", 0)"
	}
	q := fmt.Sprintf("SELECT i, %s AS line, sum(f0), sum(p0), sum(b0), %s FROM (%s) GROUP BY i, line", line, span, rowsSQL)
	rows, err := b.rows(ctx, q)
	if err != nil {
		return err
	}
	sb := query.NewSeriesBuilder(spec, req.Window)
	for _, r := range rows {
		c := cells{row: r}
		i, li := int(c.u64()), int(c.u64())
		cnt := c.counter()
		if c.err != nil {
			return c.err
		}
		if i < 0 || i >= points || li > len(lines) {
			return fmt.Errorf("clickhouse %s: series: bucket %d, line %d out of range", b.c, i, li)
		}
		res.Total.Merge(cnt)
		if li == 0 {
			sb.AddRest(i, cnt.Flows, cnt.Packets, cnt.Bytes)
			continue
		}
		sb.Add(i, lines[li-1], cnt.Flows, cnt.Packets, cnt.Bytes)
	}
	if distinct < 0 {
		distinct = 0
		if res.Total.Flows > 0 {
			distinct = 1
		}
	}
	res.Series = sb.Series(distinct)
	if src.sums {
		// The sums do not keep the records' times.
		res.Total.First, res.Total.Last = 0, 0
	}
	return nil
}

// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"context"
	"fmt"
	"strings"

	"github.com/kflow-dev/kflow/collector/query"
)

// orderSQL is the SQL of a statistic's order over the aliases of a
// group's counter (f, p, b, fs, ls: counterCols), largest first, as
// query.Counter's values are.
func orderSQL(o query.Order) string {
	d := counterDuration("fs", "ls")
	switch o {
	case query.ByPackets:
		return "p DESC"
	case query.ByBytes:
		return "b DESC"
	case query.ByPPS:
		return rateSQL("p", d) + " DESC"
	case query.ByBPS:
		return rateSQL("8 * b", d) + " DESC"
	case query.ByBPP:
		return "intDivOrZero(b, p) DESC"
	case query.ByDuration:
		return d + " DESC"
	case query.ByStart:
		return "fs"
	case query.ByEnd:
		return "ls"
	}
	return "f DESC"
}

// groupCounters are counterCols named for orderSQL, over an inner
// select's s (start ns) and e (end ns).
const groupCounters = "count() AS f, sum(packets) AS p, sum(bytes) AS b, minIf(s, s != 0) AS fs, max(e) AS ls"

// innerCols are what an inner select gives groupCounters.
const innerCols = "packets, bytes, " + startNs + " AS s, " + endNs + " AS e"

// keyAliases names a key's columns k0, k1, ... in an inner select.
func keyAliases(k valueKey, from int) (exprs, names []string) {
	for i, c := range k.cols {
		n := fmt.Sprintf("k%d", from+i)
		exprs = append(exprs, c+" AS "+n)
		names = append(names, n)
	}
	return exprs, names
}

// stats answers statistics: a total, then per statistic and order the
// top values (ties by value, as the file engine's) and the number of
// distinct values.
func (b *Backend) stats(ctx context.Context, req *query.Request, res *query.Result) error {
	src, err := b.flowsSource(ctx, req)
	if err != nil {
		return err
	}
	// The total comes with the first statistic that counts each record
	// once (WITH TOTALS), else from a query of its own.
	var total *query.Counter
	for _, spec := range req.Stats {
		for _, o := range spec.Orders {
			t := query.StatTable{Element: spec.Element, Order: o}
			if spec.Element == query.ElemRecord {
				err = b.recordStat(ctx, req, src, &t)
			} else {
				var tot *query.Counter
				tot, err = b.elemStat(ctx, req, src, &t, total == nil)
				if tot != nil {
					total = tot
				}
			}
			if err != nil {
				return err
			}
			res.Stats = append(res.Stats, t)
		}
	}
	if total == nil {
		t, err := b.total(ctx, src)
		if err != nil {
			return err
		}
		total = &t
	}
	res.Total = *total
	return nil
}

// elemStat counts an element's statistic; with wantTotal, an element
// that counts each record once also returns the total of the records.
func (b *Backend) elemStat(ctx context.Context, req *query.Request, src source, t *query.StatTable, wantTotal bool) (*query.Counter, error) {
	k, err := b.d.elemKey(t.Element)
	if err != nil {
		return nil, err
	}
	totals := ""
	if wantTotal && k.join == "" {
		totals = " WITH TOTALS"
	}
	exprs, names := keyAliases(k, 0)
	if k.join != "" {
		exprs = append([]string{k.join}, exprs...)
	}
	keys := strings.Join(names, ", ")
	q := fmt.Sprintf("SELECT %s, %s FROM (SELECT %s, %s FROM %s WHERE %s) GROUP BY %s%s ORDER BY %s, %s %s",
		keys, groupCounters, strings.Join(exprs, ", "), innerCols, src.from, src.where, keys, totals, orderSQL(t.Order), keys, limitSQL(0, req.Top))
	g, err := b.group(ctx, q)
	if err != nil {
		return nil, err
	}
	t.Distinct = g.groups
	t.Entries = make([]query.Entry, 0, len(g.rows))
	for _, r := range g.rows {
		c := cells{row: r}
		e := query.Entry{Value: k.read(&c)}
		e.Counter = c.counter()
		if c.err != nil {
			return nil, c.err
		}
		t.Entries = append(t.Entries, e)
	}
	if totals == "" {
		return nil, nil
	}
	if g.totals == nil {
		return nil, fmt.Errorf("clickhouse %s: statistic without its totals", b.c)
	}
	c := cells{row: g.totals, i: len(names)}
	total := c.counter()
	return &total, c.err
}

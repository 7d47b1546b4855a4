// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
)

// summary answers -I: totals per protocol class and per exporter and
// observation domain. Blocks counts the distinct flow-file blocks the
// records came from (the files' block count when nothing is filtered);
// sequence failures are counted by the collector in its files, not
// shipped: 0 here.
func (b *Backend) summary(ctx context.Context, req *query.Request, res *query.Result) error {
	src, err := b.flowsSource(ctx, req)
	if err != nil {
		return err
	}
	exp := b.d.addrKeyOf("exporter", false)
	q := fmt.Sprintf("SELECT %s, %s, %s, observation_domain, multiIf(proto = 6, 0, proto = 17, 1, proto IN (1, 58), 2, 3) AS class, %s\n"+
		"FROM %s WHERE %s GROUP BY %s, %s, %s, observation_domain, class",
		exp.fam, exp.hi, exp.lo, counterCols, src.from, src.where, exp.fam, exp.hi, exp.lo)
	rows, err := b.rows(ctx, q)
	if err != nil {
		return err
	}
	s := flowfile.Summary{}
	exporters := map[[2]any]*flowfile.ExporterStats{}
	var total query.Counter
	for _, r := range rows {
		c := cells{row: r}
		addr := c.addr()
		domain := uint32(c.u64())
		class := c.u64()
		cnt := c.counter()
		if c.err != nil {
			return c.err
		}
		total.Merge(cnt)
		add := func(dst *flowfile.Counters) {
			dst.Flows += cnt.Flows
			dst.Packets += cnt.Packets
			dst.Octets += cnt.Bytes
		}
		add(&s.Total)
		add([]*flowfile.Counters{&s.TCP, &s.UDP, &s.ICMP, &s.Other}[min(class, 3)])
		k := [2]any{addr, domain}
		e := exporters[k]
		if e == nil {
			e = &flowfile.ExporterStats{Addr: addr, ObservationDomain: domain}
			exporters[k] = e
		}
		add(&e.Counters)
	}
	for _, e := range exporters {
		s.Exporters = append(s.Exporters, *e)
	}
	slices.SortFunc(s.Exporters, func(a, b flowfile.ExporterStats) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.ObservationDomain, b.ObservationDomain))
	})
	s.FirstSeen, s.LastSeen = total.FirstSeen(), total.LastSeen()
	blocks, err := b.rows(ctx, fmt.Sprintf("SELECT uniqExact(block_id) FROM %s WHERE %s", src.from, src.where))
	if err != nil {
		return err
	}
	if len(blocks) == 1 {
		c := cells{row: blocks[0]}
		s.Blocks = c.u64()
		if c.err != nil {
			return c.err
		}
	}
	res.Summary, res.Total = &s, total
	return nil
}

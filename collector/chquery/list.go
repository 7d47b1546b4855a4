// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// recordOrderSQL orders records as query's listings do: by time for
// tstart and tend (earliest first), else by the record's counter value,
// largest first; ties in file order (recordOrder).
func recordOrderSQL(req *query.Request) string {
	if !req.Ordered {
		return recordOrder
	}
	f := "if(" + startNs + " = 0, 0, " + startNs + ")"
	d := counterDuration(f, endNs)
	o := map[query.Order]string{
		query.ByStart:    "flow_start, flow_start_ns",
		query.ByEnd:      "flow_end, flow_end_ns",
		query.ByPackets:  "packets DESC",
		query.ByBytes:    "bytes DESC",
		query.ByPPS:      rateSQL("packets", d) + " DESC",
		query.ByBPS:      rateSQL("8 * bytes", d) + " DESC",
		query.ByBPP:      "intDivOrZero(bytes, packets) DESC",
		query.ByDuration: d + " DESC",
	}[req.Order]
	if o == "" {
		return recordOrder // flows: 1 for every record
	}
	return o + ", " + recordOrder
}

// records answers a listing of records: ordered, paged, or streamed.
// A streamed listing, and one in time order with a limit (-c, and the
// page's first pages), read every selected record once and count them
// here; others count in a query of their own and read only the page.
func (b *Backend) records(ctx context.Context, req *query.Request, res *query.Result) error {
	src, err := b.flowsSource(ctx, req)
	if err != nil {
		return err
	}
	counted := req.Stream != nil || req.Limit > 0 && !req.Ordered
	limit := ""
	if !counted {
		if res.Total, err = b.total(ctx, src); err != nil {
			return err
		}
		res.Matched = int(res.Total.Flows)
		limit = limitSQL(req.Offset, req.Top)
	}
	q := fmt.Sprintf("SELECT %s FROM %s %s ORDER BY %s %s\nFORMAT RowBinary",
		strings.Join(clickhouse.RecordColumns(), ", "), src.from, src.cond(), recordOrderSQL(req), limit)
	body, err := b.c.QueryStream(ctx, q, settingsFor(q))
	if err != nil {
		return err
	}
	defer body.Close()
	// A few thousand rows per read; a row cut by a read waits for its
	// end at the start of the buffer.
	buf := make([]byte, 1<<20)
	have := 0
	for {
		n, err := io.ReadFull(body, buf[have:])
		have += n
		rows, used, derr := clickhouse.DecodeRecords(buf[:have])
		if derr != nil {
			return derr
		}
		have = copy(buf, buf[used:have])
		for i := range rows {
			w := query.Row{Record: rows[i].Record, Flows: 1}
			switch {
			case req.Stream != nil:
				if err := req.Stream(&w); err != nil {
					return err
				}
			case !counted || res.Matched >= req.Offset && (req.Top == 0 || len(res.Rows) < req.Top):
				res.Rows = append(res.Rows, w)
			}
			if counted {
				res.Total.Add(&w.Record)
				res.Matched++
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if have != 0 {
				return fmt.Errorf("clickhouse %s: result cut inside a row", b.c)
			}
			return nil
		case err != nil:
			return fmt.Errorf("clickhouse %s: read result: %w", b.c, err)
		case have == len(buf):
			// One row longer than the buffer.
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}

// aggKey is the key of aggregated records: the kept fields of an AggSpec.
type aggKey struct {
	spec  query.AggSpec
	exprs []string // inner select expressions, aliased k0...
	names []string
	src   valueKey // when spec.SrcIP
	dst   valueKey // when spec.DstIP
	none  bool     // no field kept: one group, keyed by a constant
	first string   // firstCols
}

func (d dialect) aggKeyOf(spec query.AggSpec) aggKey {
	k := aggKey{spec: spec, first: d.firstCols()}
	add := func(v valueKey) {
		e, n := keyAliases(v, len(k.names))
		k.exprs = append(k.exprs, e...)
		k.names = append(k.names, n...)
	}
	if spec.SrcIP {
		k.src = d.addrValue("src", true, spec.SrcBits4, spec.SrcBits6)
		add(k.src)
	}
	if spec.DstIP {
		k.dst = d.addrValue("dst", true, spec.DstBits4, spec.DstBits6)
		add(k.dst)
	}
	if spec.SrcPort {
		add(numValue("src_port"))
	}
	if spec.DstPort {
		add(numValue(nfDstPort))
	}
	if spec.Proto {
		add(numValue("proto"))
	}
	if len(k.names) == 0 {
		k.none = true
		add(numValue("0"))
	}
	return k
}

// aggCols are the aggregates of an aggregated record after its key:
// groupCounters, the OR of TCP flags, the last ICMP type·256+code in file
// order and whether the group has an ICMP record, the position of the
// group's first record (the order groups were first seen in), then the
// fields of that first record that -a, -b and -B keep (firstCols).
const aggCols = groupCounters + ", groupBitOr(tcp_flags) AS fl, argMaxIf(icmp, rk, proto IN (1, 58)) AS ic, " +
	"countIf(proto IN (1, 58)) AS nic, min(rk) AS o"

// firstNums are the numeric fields of a group's first record that -a,
// -b and -B keep, as query.Aggregator keeps them; the router and next
// hop addresses follow them.
var firstNums = []string{"tos", "in_if", "out_if", "src_as", "dst_as", "src_mask", "dst_mask", "direction", "vlan", "inner_vlan", "observation_domain"}

// aggInner are the inner select's columns for aggCols and firstCols.
const aggInner = innerCols + ", tcp_flags, proto, toUInt32(icmp_type) * 256 + icmp_code AS icmp, " + recordKey + " AS rk, " +
	"tos, in_if, out_if, src_as, dst_as, src_mask, dst_mask, direction, vlan, inner_vlan, observation_domain, exporter, next_hop"

// firstCols are the first record's kept fields: firstNums, then the
// router's and the next hop's address keys.
func (d dialect) firstCols() string {
	var cols []string
	for _, c := range firstNums {
		cols = append(cols, "argMin("+c+", rk)")
	}
	for _, c := range []string{"exporter", "next_hop"} {
		a := d.addrKeyOf(c, false)
		for _, e := range []string{a.fam, a.hi, a.lo} {
			cols = append(cols, "argMin("+e+", rk)")
		}
	}
	return strings.Join(cols, ", ")
}

// readAgg reads an aggregated record's row (its key, then aggCols) into
// the record fields query.Aggregator keeps, and its counter.
func (k *aggKey) readAgg(c *cells) (flow.Record, query.Counter) {
	var r flow.Record
	if k.spec.SrcIP {
		r.Src = k.src.read(c).Addr
	}
	if k.spec.DstIP {
		r.Dst = k.dst.read(c).Addr
	}
	if k.spec.SrcPort {
		r.SrcPort = uint16(c.u64())
	}
	if k.spec.DstPort {
		r.DstPort = uint16(c.u64())
	}
	if k.spec.Proto {
		r.Proto = uint8(c.u64())
	}
	if k.none {
		c.u64()
	}
	cnt := c.counter()
	flags := uint16(c.u64())
	icmp, nicmp := c.u64(), c.u64()
	c.next() // the first record's position
	var first flow.Record
	nums := []*uint32{&first.InIf, &first.OutIf, &first.SrcAS, &first.DstAS}
	first.TOS = uint8(c.u64())
	for _, p := range nums {
		*p = uint32(c.u64())
	}
	first.SrcMask, first.DstMask, first.Direction = uint8(c.u64()), uint8(c.u64()), flow.Direction(c.u64())
	first.VLAN, first.InnerVLAN, first.ObservationDomain = uint16(c.u64()), uint16(c.u64()), uint32(c.u64())
	first.Exporter, first.NextHop = c.addr(), c.addr()
	if k.spec.Records {
		r.TCPFlags = flags
		r.TOS, r.InIf, r.OutIf, r.SrcAS, r.DstAS = first.TOS, first.InIf, first.OutIf, first.SrcAS, first.DstAS
		r.SrcMask, r.DstMask, r.Direction = first.SrcMask, first.DstMask, first.Direction
		r.VLAN, r.InnerVLAN, r.ObservationDomain = first.VLAN, first.InnerVLAN, first.ObservationDomain
		r.Exporter, r.NextHop = first.Exporter, first.NextHop
	}
	if k.spec.DstPort && nicmp > 0 {
		r.ICMPType, r.ICMPCode = uint8(icmp>>8), uint8(icmp)
	}
	return r, cnt
}

// aggQuery groups the records of src by k, ordered by order (a SQL
// ORDER BY over aggCols' aliases, then the order groups were first seen
// in) and limited.
func (k *aggKey) query(src source, order, limit string) string {
	keys := strings.Join(k.names, ", ")
	if order != "" {
		order += ", "
	}
	return fmt.Sprintf("SELECT %s, %s, %s FROM (SELECT %s, %s FROM %s WHERE %s) GROUP BY %s ORDER BY %so, %s %s",
		keys, aggCols, k.first, strings.Join(k.exprs, ", "), aggInner, src.from, src.where, keys, order, keys, limit)
}

// aggRow turns an aggregated record (no pairing) into a listing row.
func aggRow(r flow.Record, c query.Counter) query.Row {
	w := query.Row{Record: r, Flows: c.Flows}
	w.Packets, w.Octets = c.Packets, c.Bytes
	w.Start, w.End = c.FirstSeen(), c.LastSeen()
	return w
}

// aggregates answers an aggregated listing (-A, -a, -b, -B).
func (b *Backend) aggregates(ctx context.Context, req *query.Request, res *query.Result) error {
	src, err := b.flowsSource(ctx, req)
	if err != nil {
		return err
	}
	if res.Total, err = b.total(ctx, src); err != nil {
		return err
	}
	if req.Bidir != query.Unidirectional {
		agg, err := b.pairs(ctx, src, req.Bidir)
		if err != nil {
			return err
		}
		rows := agg.Records()
		if req.Ordered {
			rows = agg.Top(req.Order, 0)
		}
		res.Matched = len(rows)
		res.Rows = query.Page(rows, req.Offset, req.Top)
		return nil
	}
	k := b.d.aggKeyOf(*req.Aggregate)
	order := ""
	if req.Ordered {
		order = orderSQL(req.Order)
	}
	res.Rows, res.Matched, err = b.aggRows(ctx, &k, src, order, limitSQL(req.Offset, req.Top))
	return err
}

// aggRows runs k's query and returns the aggregated records as listing
// rows (no pairing), and the number of groups before the limit.
func (b *Backend) aggRows(ctx context.Context, k *aggKey, src source, order, limit string) ([]query.Row, int, error) {
	rows, n, err := b.limited(ctx, k.query(src, order, limit))
	if err != nil {
		return nil, 0, err
	}
	out := make([]query.Row, 0, len(rows))
	for _, row := range rows {
		c := cells{row: row}
		r, cnt := k.readAgg(&c)
		if c.err != nil {
			return nil, 0, c.err
		}
		out = append(out, aggRow(r, cnt))
	}
	return out, n, nil
}

// recordStat answers the "record" statistic: the top aggregated records
// (by the request's Aggregate, else the five-tuple, paired when asked).
func (b *Backend) recordStat(ctx context.Context, req *query.Request, src source, t *query.StatTable) error {
	if req.Bidir != query.Unidirectional {
		agg, err := b.pairs(ctx, src, req.Bidir)
		if err != nil {
			return err
		}
		t.Distinct = agg.Len()
		t.Rows = agg.Top(t.Order, req.Top)
		return nil
	}
	spec := query.FiveTuple()
	if req.Aggregate != nil {
		spec = *req.Aggregate
	}
	k := b.d.aggKeyOf(spec)
	var err error
	t.Rows, t.Distinct, err = b.aggRows(ctx, &k, src, orderSQL(t.Order), limitSQL(0, req.Top))
	return err
}

// pairs reads the five-tuples of src in the order they were first seen
// and pairs them with query.Aggregator, which pairs groups exactly as it
// pairs their records (AddCounts).
func (b *Backend) pairs(ctx context.Context, src source, bidir query.Bidir) (*query.Aggregator, error) {
	limit := b.MaxPairs
	if limit <= 0 {
		limit = DefaultMaxPairs
	}
	k := b.d.aggKeyOf(query.FiveTuple())
	rows, n, err := b.limited(ctx, k.query(src, "", limitSQL(0, limit+1)))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: pairing reads every connection, and the request has %d, more than %d: narrow the window or the filter",
			query.ErrRequest, n, limit)
	}
	agg := query.NewAggregator(query.FiveTuple(), bidir)
	for _, row := range rows {
		c := cells{row: row}
		r, cnt := k.readAgg(&c)
		if c.err != nil {
			return nil, c.err
		}
		agg.AddCounts(&r, cnt)
	}
	return agg, nil
}

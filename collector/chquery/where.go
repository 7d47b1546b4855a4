// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
)

// ErrFilter reports a filter primitive this backend cannot express: a
// bad request (query.ErrRequest) here, which the flow files may answer.
var ErrFilter = fmt.Errorf("%w: filter not expressible in ClickHouse", query.ErrRequest)

// numCols are the SQL of the numeric filter fields on the flows table.
var numCols = map[filter.Field]string{
	filter.FieldSrcPort: "src_port", filter.FieldDstPort: nfDstPort, filter.FieldProto: "proto",
	filter.FieldTOS: "tos", filter.FieldVLAN: "vlan", filter.FieldSrcAS: "src_as", filter.FieldDstAS: "dst_as",
	filter.FieldSrcMask: "src_mask", filter.FieldDstMask: "dst_mask", filter.FieldInIf: "in_if", filter.FieldOutIf: "out_if",
	filter.FieldDirection: "direction", filter.FieldPackets: "packets", filter.FieldBytes: "bytes",
	filter.FieldDuration: durationMs,
	filter.FieldPPS:      rateSQL("packets", durationMs),
	filter.FieldBPS:      rateSQL("8 * bytes", durationMs),
	filter.FieldBPP:      "intDivOrZero(bytes, packets)",
	filter.FieldICMPType: "intDiv(" + nfDstPort + ", 256)",
	filter.FieldICMPCode: "(" + nfDstPort + " % 256)",
	filter.FieldDomain:   "observation_domain",
	// NetFlow v5's engine type and id, kept in the observation domain.
	filter.FieldEngineType: "bitAnd(bitShiftRight(observation_domain, 8), 255)",
	filter.FieldEngineID:   "bitAnd(observation_domain, 255)",
}

// consolidatedCols are the numeric fields the consolidated tables keep.
var consolidatedCols = map[filter.Field]bool{
	filter.FieldProto: true, filter.FieldSrcAS: true, filter.FieldDstAS: true, filter.FieldInIf: true,
	filter.FieldOutIf: true, filter.FieldDirection: true, filter.FieldFlows: true,
}

var addrCols = map[filter.Field]string{
	filter.FieldSrc: "src", filter.FieldDst: "dst", filter.FieldExporter: "exporter", filter.FieldNextHop: "next_hop",
}

var opSQL = map[filter.Op]string{filter.EQ: "=", filter.NE: "!=", filter.LT: "<", filter.GT: ">", filter.LE: "<=", filter.GE: ">="}

// where translates a filter's tree. consolidated restricts it to the
// columns the consolidated tables keep (ok false when it needs others).
type where struct {
	d            dialect
	consolidated bool
}

// filterSQL returns the WHERE condition of f ("1" for none); ok is false
// when consolidated is set and f needs columns those tables lack.
func (w where) filterSQL(f *filter.Filter) (cond string, ok bool, err error) {
	if f == nil || f.MatchesAll() {
		return "1", true, nil
	}
	cond, err = w.expr(f.Expr(), false)
	if errors.Is(err, errNotConsolidated) {
		return "", false, nil
	}
	return cond, err == nil, err
}

var errNotConsolidated = errors.New("needs the flows table")

// expr translates e; neg is whether it sits below an odd number of Nots
// (filter.Flags depends on it).
func (w where) expr(e filter.Expr, neg bool) (string, error) {
	switch e := e.(type) {
	case filter.All:
		return "1", nil
	case filter.And:
		return w.pair(e.L, e.R, "AND", neg)
	case filter.Or:
		return w.pair(e.L, e.R, "OR", neg)
	case filter.Not:
		x, err := w.expr(e.X, !neg)
		return "NOT " + x, err
	case filter.Family:
		v := 4
		if e.V6 {
			v = 6
		}
		return fmt.Sprintf("(ip_version = %d)", v), nil
	case filter.Flags:
		if w.consolidated {
			return "", errNotConsolidated
		}
		if neg {
			return fmt.Sprintf("(bitAnd(tcp_flags, %d) != 0)", e.Mask), nil
		}
		return fmt.Sprintf("(bitAnd(tcp_flags, %d) = %d)", e.Mask, e.Mask), nil
	case filter.Compare:
		if e.Field == filter.FieldFlows {
			return boolSQL(e.Op.Holds(1, e.Value)), nil
		}
		col, err := w.numCol(e.Field)
		if err != nil {
			return "", err
		}
		return icmpOnly(e.Field, fmt.Sprintf("(%s %s %d)", col, opSQL[e.Op], e.Value)), nil
	case filter.InNumbers:
		if e.Field == filter.FieldFlows {
			return boolSQL(len(e.Values) > 0 && e.Values[0] == 1), nil
		}
		col, err := w.numCol(e.Field)
		if err != nil {
			return "", err
		}
		return icmpOnly(e.Field, inNumbers(col, e.Values)), nil
	case filter.AddrIn:
		return w.addrIn(e)
	case filter.Cgroup:
		return w.cgroup(e)
	case filter.Ident:
		return "", fmt.Errorf("%w: ident %s: the flow files' idents are not stored in ClickHouse; ask the flow files (-R DIR)", ErrFilter, e.Name)
	}
	return "", fmt.Errorf("%w: primitive %T", ErrFilter, e)
}

// cgroup matches the cgroup columns as the filter's Cgroup does (the
// names are the flow.ParseCgroup of the path, stored with each row).
// The value reaches the SQL in hexadecimal only (strLit).
func (w where) cgroup(e filter.Cgroup) (string, error) {
	if w.consolidated {
		return "", errNotConsolidated
	}
	v := e.Value
	switch e.Kind {
	case "unit", "pod":
		return fmt.Sprintf("(cgroup != '' AND %s = %s)", e.Kind, strLit(v)), nil
	case "container": // the id or its first digits
		return fmt.Sprintf("(container != '' AND substring(container, 1, %d) = %s)", len(v), strLit(v)), nil
	case "cgroup": // the path or one below it
		return fmt.Sprintf("(cgroup != '' AND (cgroup = %s OR substring(cgroup, 1, %d) = %s))", strLit(v), len(v)+1, strLit(v+"/")), nil
	}
	return "", fmt.Errorf("%w: cgroup primitive %q", ErrFilter, e.Kind)
}

// inNumbers tests col against ascending values: runs of consecutive
// values as ranges, the others in a list, so that long lists ("port in
// [1024 1025 ... 65535]") stay short queries.
func inNumbers(col string, vals []uint64) string {
	var parts, single []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%s BETWEEN %d AND %d", col, vals[i], vals[j]))
		} else {
			for _, v := range vals[i : j+1] {
				single = append(single, fmt.Sprint(v))
			}
		}
		i = j + 1
	}
	if len(single) > 0 {
		parts = append(parts, fmt.Sprintf("%s IN (%s)", col, strings.Join(single, ", ")))
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

func (w where) pair(l, r filter.Expr, op string, neg bool) (string, error) {
	a, err := w.expr(l, neg)
	if err != nil {
		return "", err
	}
	b, err := w.expr(r, neg)
	if err != nil {
		return "", err
	}
	return "(" + a + " " + op + " " + b + ")", nil
}

func (w where) numCol(f filter.Field) (string, error) {
	col, ok := numCols[f]
	switch {
	case !ok:
		return "", fmt.Errorf("%w: field %d", ErrFilter, f)
	case w.consolidated && !consolidatedCols[f]:
		return "", errNotConsolidated
	}
	return col, nil
}

// icmpOnly limits a test of the ICMP type or code to ICMP records.
func icmpOnly(f filter.Field, cond string) string {
	if f == filter.FieldICMPType || f == filter.FieldICMPCode {
		return "(proto IN (1, 58) AND " + cond + ")"
	}
	return cond
}

func boolSQL(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// addrIn matches an address column against addresses and networks with
// netip's equality on the addresses as the schema reads them back
// (addrKeyOf): an IPv4 address or network matches IPv4-mapped bytes read
// as IPv4; an IPv6 one matches bytes read as IPv6. Addresses with a zone
// match nothing (the schema keeps no zones). The conditions test the
// column itself where they can, so that ClickHouse uses its index.
func (w where) addrIn(e filter.AddrIn) (string, error) {
	col, ok := addrCols[e.Field]
	if !ok {
		return "", fmt.Errorf("%w: address field %d", ErrFilter, e.Field)
	}
	if w.consolidated && e.Field != filter.FieldExporter {
		return "", errNotConsolidated
	}
	flowAddr := col == "src" || col == "dst" // read as IPv6 in IPv6 records
	// isV4 holds for bytes that are IPv4-mapped, to be read as IPv4;
	// isV6 for any bytes, to be read as IPv6.
	isV4 := "1"
	if flowAddr {
		isV4 = "ip_version != 6"
	}
	isV6 := fmt.Sprintf("(%s = 2)", w.d.addrKeyOf(col, flowAddr).fam)
	var v4, v6, parts []string
	for _, a := range e.Addrs {
		switch {
		case a.Zone() != "":
		case a.Is4():
			v4 = append(v4, w.d.addrLit(a.As16()))
		case a.IsUnspecified():
			// :: is read as no address, but in an IPv6 record.
			if flowAddr {
				parts = append(parts, fmt.Sprintf("(ip_version = 6 AND %s = %s)", col, w.d.addrLit(a.As16())))
			}
		default:
			// Neither IPv4-mapped (filters unmap them) nor zero: read as
			// IPv6 whatever the record.
			v6 = append(v6, w.d.addrLit(a.As16()))
		}
	}
	if len(v4) > 0 {
		parts = append(parts, fmt.Sprintf("(%s AND %s IN (%s))", isV4, col, strings.Join(v4, ", ")))
	}
	if len(v6) > 0 {
		parts = append(parts, fmt.Sprintf("(%s IN (%s))", col, strings.Join(v6, ", ")))
	}
	for _, p := range e.Nets {
		lo, hi := prefixRange(p)
		r := fmt.Sprintf("%s BETWEEN %s AND %s", col, w.d.addrLit(lo), w.d.addrLit(hi))
		switch {
		case p.Addr().Is4():
			parts = append(parts, fmt.Sprintf("(%s AND %s)", isV4, r))
		case netip.AddrFrom16(lo).Compare(lastMapped) > 0:
			// Past every zero and IPv4-mapped address: read as IPv6.
			parts = append(parts, "("+r+")")
		default:
			parts = append(parts, fmt.Sprintf("(%s AND %s)", isV6, r))
		}
	}
	if len(parts) == 0 {
		return "0", nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", nil
}

// lastMapped is the last IPv4-mapped address, ::ffff:255.255.255.255.
var lastMapped = netip.MustParseAddr("::ffff:ffff:ffff")

// prefixRange returns the first and last address of p as 16 bytes
// (IPv4 networks IPv4-mapped).
func prefixRange(p netip.Prefix) (lo, hi [16]byte) {
	lo = p.Masked().Addr().As16()
	hi = lo
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		hi[i/8] |= 0x80 >> (i % 8)
	}
	return lo, hi
}

// windowSQL is nfdump's -t on the records' nanosecond times (0 for a
// record without a start or end, which nfdump's -t reads as before any
// bound), with the table's time column bounded too so that ClickHouse
// reads only the partitions and granules of the window (time is the
// record's end, its start when it has none: for a record that ends after
// it starts, the bounds hold whenever the window's do). Stored times lie
// between 1970 and 2106: bounds outside are answered without them.
func windowSQL(w query.Window) string {
	var parts []string
	epoch, last := time.Unix(0, 0), time.Unix(1<<32-1, 0)
	switch {
	case w.From.IsZero():
	case !w.From.After(epoch):
		parts = append(parts, startNs+" != 0")
	case w.From.After(last):
		parts = append(parts, "0")
	case w.From.Nanosecond() == 0:
		// A whole second: the start's second alone decides, and
		// ClickHouse need not compute nanoseconds.
		parts = append(parts, "flow_start >= "+timeLit(w.From), "time >= "+timeLit(w.From))
	default:
		parts = append(parts, startNs+" >= "+nsLit(w.From), "time >= "+timeLit(w.From))
	}
	switch {
	case w.To.IsZero(), !w.To.Before(last):
	case w.To.Before(epoch):
		parts = append(parts, endNs+" = 0")
	case w.To.Nanosecond() == 0:
		parts = append(parts, fmt.Sprintf("(flow_end < %s OR flow_end = %s AND flow_end_ns = 0)", timeLit(w.To), timeLit(w.To)),
			"time <= "+timeLit(w.To))
	default:
		parts = append(parts, endNs+" <= "+nsLit(w.To), "time <= "+timeLit(w.To))
	}
	if len(parts) == 0 {
		return "1"
	}
	return strings.Join(parts, " AND ")
}

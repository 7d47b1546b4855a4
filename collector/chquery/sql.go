// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// SQL building blocks. Every literal is made here from a number, a
// netip value or a string's bytes in hexadecimal (strLit): no text of a
// request reaches the SQL.

// dialect is what differs between the schema's two dialects: addresses
// are FixedString(16) on 18.16 and IPv6 from 21.8 (both hold the 16
// bytes of the address, IPv4 addresses IPv4-mapped).
type dialect struct{ modern bool }

// addrLit is an address column's literal for 16 address bytes.
func (d dialect) addrLit(b [16]byte) string {
	if d.modern {
		return "toIPv6('" + netip.AddrFrom16(b).String() + "')"
	}
	var s strings.Builder
	s.WriteByte('\'')
	for _, c := range b {
		fmt.Fprintf(&s, "\\x%02x", c)
	}
	s.WriteByte('\'')
	return s.String()
}

// bytes16 is an expression of an address column's 16 bytes as a
// FixedString(16).
func (d dialect) bytes16(col string) string {
	if d.modern {
		return "IPv6StringToNum(IPv6NumToString(" + col + "))"
	}
	return col
}

// addrKey is an address column as numbers that order as netip.Addr
// does: fam (0 none, 1 IPv4, 2 IPv6), then the high and low halves of
// the 16 bytes (IPv4 addresses as IPv4-mapped).
type addrKey struct{ fam, hi, lo string }

// mapped16 is ::ffff:0.0.0.0, the start of IPv4-mapped addresses.
var mapped16 = [16]byte{10: 0xff, 11: 0xff}

// addrKeyOf returns the key of an address column, read back as the
// schema stores it (clickhouse.DecodeRows): no address when all zero,
// IPv4 when IPv4-mapped, IPv6 otherwise, and for a record's source and
// destination (flowAddr) in an IPv6 record (ip_version 6) IPv6 whatever
// the bytes.
func (d dialect) addrKeyOf(col string, flowAddr bool) addrKey {
	b := d.bytes16(col)
	k := addrKey{
		hi: "reinterpretAsUInt64(reverse(substring(" + b + ", 1, 8)))",
		lo: "reinterpretAsUInt64(reverse(substring(" + b + ", 9, 8)))",
	}
	v4 := fmt.Sprintf("(%s = 0 AND bitShiftRight(%s, 32) = 65535)", k.hi, k.lo)
	none := fmt.Sprintf("(%s = 0 AND %s = 0)", k.hi, k.lo)
	k.fam = fmt.Sprintf("multiIf(%s, 0, %s, 1, 2)", none, v4)
	if flowAddr {
		k.fam = "if(ip_version = 6, 2, " + k.fam + ")"
	}
	return k
}

// masked returns the key with IPv4 addresses cut to bits4 and IPv6 ones
// to bits6 (negative: unchanged), as query's address masks do.
func (k addrKey) masked(bits4, bits6 int) addrKey {
	out := k
	if bits4 >= 0 {
		m := uint64(0xffffffff) << 32
		if bits4 > 0 {
			m |= uint64(^uint32(0) << (32 - bits4))
		}
		out.lo = fmt.Sprintf("if(%s = 1, bitAnd(%s, %d), %s)", k.fam, k.lo, m, k.lo)
	}
	if bits6 >= 0 {
		hiM, loM := mask128(bits6)
		out.hi = fmt.Sprintf("if(%s = 2, bitAnd(%s, %d), %s)", k.fam, k.hi, hiM, k.hi)
		lo := out.lo
		out.lo = fmt.Sprintf("if(%s = 2, bitAnd(%s, %d), %s)", k.fam, k.lo, loM, lo)
	}
	return out
}

// mask128 returns the high and low halves of a 128-bit mask of n ones.
func mask128(n int) (hi, lo uint64) {
	switch {
	case n <= 0:
		return 0, 0
	case n < 64:
		return ^uint64(0) << (64 - n), 0
	case n == 64:
		return ^uint64(0), 0
	case n < 128:
		return ^uint64(0), ^uint64(0) << (128 - n)
	}
	return ^uint64(0), ^uint64(0)
}

// addrFromKey builds the address of a key's values.
func addrFromKey(fam uint64, hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	switch fam {
	case 0:
		return netip.Addr{}
	case 1:
		return netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrFrom16(b)
}

// strLit is a String literal of s's bytes written in hexadecimal: the
// text of a request reaches the SQL only as the digits 0-9 and A-F.
func strLit(s string) string { return "unhex('" + hexUpper(s) + "')" }

// hexUpper is s's bytes in hexadecimal as ClickHouse's hex() writes them.
func hexUpper(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }

// Record times as Int64 nanoseconds since the epoch, 0 for none.
const (
	startNs = "(toInt64(toUInt32(flow_start)) * 1000000000 + flow_start_ns)"
	endNs   = "(toInt64(toUInt32(flow_end)) * 1000000000 + flow_end_ns)"
	// nfDstPort is flow.Record.NfDstPort: ICMP type·256+code for ICMP
	// records without a port.
	nfDstPort = "toUInt32(if(dst_port = 0 AND proto IN (1, 58), toUInt32(icmp_type) * 256 + icmp_code, dst_port))"
	// durationMs is flow.Record.DurationMs.
	durationMs = "toUInt64(if(" + startNs + " = 0 OR " + endNs + " = 0 OR " + endNs + " < " + startNs +
		", 0, intDiv(" + endNs + " - " + startNs + ", 1000000)))"
	// recordOrder is the order the file engine reads records in (their
	// position in the flow files, clickhouse.Position), then time order
	// for rows shipped without a position.
	recordOrder = "file_slot, file, file_pos, flow_start, flow_start_ns, flow_end, flow_end_ns, src, dst, src_port, dst_port, proto"
	// recordKey is recordOrder's leading part as one tuple.
	recordKey = "(file_slot, file, file_pos, flow_start, flow_start_ns)"
)

// counterCols are the aggregates of a query.Counter, in this order:
// flows, packets, bytes, first start, last end (ns).
const counterCols = "count(), sum(packets), sum(bytes), minIf(" + startNs + ", " + startNs + " != 0), max(" + endNs + ")"

// counterDuration is query.Counter.DurationMs over counterCols' aliases
// f (first) and l (last).
func counterDuration(f, l string) string {
	return fmt.Sprintf("toUInt64(if(%s = 0 OR %s < %s, 0, intDiv(%s - %s, 1000000)))", f, l, f, l, f)
}

// rateSQL is v per second over d milliseconds, as flow.Rate computes it
// (floating point over the duration in seconds, truncated; 0 for no
// duration), so that both backends print and compare the same digits.
func rateSQL(v, d string) string {
	return fmt.Sprintf("if(%s = 0, toUInt64(0), toUInt64((%s) / (%s / 1000)))", d, v, d)
}

// timeLit is a DateTime literal of t's second.
func timeLit(t time.Time) string { return fmt.Sprintf("toDateTime(%d, 'UTC')", t.Unix()) }

// nsLit is t as nanoseconds since the epoch.
func nsLit(t time.Time) string { return fmt.Sprint(t.UnixNano()) }

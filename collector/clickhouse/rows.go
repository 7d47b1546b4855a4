// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// column is one column of the flows table: its name, its type in each
// dialect, and its RowBinary size (every column is fixed-size; the
// encoding is the same in both dialects: an IPv6 is 16 bytes in network
// order, as the FixedString(16) it replaces).
type column struct {
	name           string
	legacy, modern string
	size           int
}

// addr is the address type of each dialect. IPv4 addresses are stored
// IPv4-mapped (::ffff:a.b.c.d), as the IPv6 type stores them.
const (
	legacyAddr = "FixedString(16)"
	modernAddr = "IPv6"
)

// flowColumns are the flows table's columns, in table and row order.
var flowColumns = []column{
	// time is what the table is partitioned, ordered and consolidated
	// by: the record's end, its start when it has no end, the time the
	// collector received it when it has neither.
	{"time", "DateTime('UTC')", "DateTime('UTC') CODEC(DoubleDelta, ZSTD(1))", 4},
	{"flow_start", "DateTime('UTC')", "DateTime('UTC') CODEC(Delta, ZSTD(1))", 4},
	{"flow_start_ns", "UInt32", "UInt32", 4},
	{"flow_end", "DateTime('UTC')", "DateTime('UTC') CODEC(Delta, ZSTD(1))", 4},
	{"flow_end_ns", "UInt32", "UInt32", 4},
	{"exporter", legacyAddr, modernAddr, 16},
	{"observation_domain", "UInt32", "UInt32", 4},
	{"ip_version", "UInt8", "UInt8", 1},
	{"src", legacyAddr, modernAddr, 16},
	{"dst", legacyAddr, modernAddr, 16},
	{"next_hop", legacyAddr, modernAddr, 16},
	{"src_port", "UInt16", "UInt16", 2},
	{"dst_port", "UInt16", "UInt16", 2},
	{"proto", "UInt8", "UInt8", 1},
	{"icmp_type", "UInt8", "UInt8", 1},
	{"icmp_code", "UInt8", "UInt8", 1},
	{"vlan", "UInt16", "UInt16", 2},
	{"inner_vlan", "UInt16", "UInt16", 2},
	{"in_if", "UInt32", "UInt32", 4},
	{"out_if", "UInt32", "UInt32", 4},
	{"direction", "UInt8", "UInt8", 1},
	{"packets", "UInt64", "UInt64 CODEC(T64, ZSTD(1))", 8},
	{"bytes", "UInt64", "UInt64 CODEC(T64, ZSTD(1))", 8},
	{"tcp_flags", "UInt16", "UInt16", 2},
	{"tos", "UInt8", "UInt8", 1},
	{"min_ttl", "UInt8", "UInt8", 1},
	{"max_ttl", "UInt8", "UInt8", 1},
	{"end_reason", "UInt8", "UInt8", 1},
	{"src_as", "UInt32", "UInt32", 4},
	{"dst_as", "UInt32", "UInt32", 4},
	{"src_mask", "UInt8", "UInt8", 1},
	{"dst_mask", "UInt8", "UInt8", 1},
	{"sampling_interval", "UInt32", "UInt32", 4},
	// block_id is the shipper's identity of the file block a row came
	// from: an insert that may or may not have landed is checked by it
	// before it is sent again.
	{"block_id", "UInt64", "UInt64 CODEC(Delta, ZSTD(1))", 8},
}

// positionColumns follow flowColumns in the flows table: where a row's
// record stands in its flow files (Position). They are not part of a
// record (FlowColumns, DecodeRows); the file is a variable-length String.
var positionColumns = []column{
	{"file_slot", "DateTime('UTC')", "DateTime('UTC') CODEC(Delta, ZSTD(1))", 4},
	{"file", "String", "LowCardinality(String)", 0},
	{"file_pos", "UInt64", "UInt64 CODEC(Delta, ZSTD(1))", 8},
}

// cgroupColumns follow positionColumns in the flows table: the local
// socket's cgroup (flow.Record.CgroupID and Cgroup) and the names its
// path shows (flow.ParseCgroup: unit, container, pod), derived once when
// the row is made so that filters and statistics by them are plain
// comparisons. Rows of records without a cgroup, and rows shipped
// before schema version 3, hold 0 and empty strings.
var cgroupColumns = []column{
	{"cgroup_id", "UInt64", "UInt64", 8},
	{"cgroup", "String", "LowCardinality(String)", 0},
	{"unit", "String", "LowCardinality(String)", 0},
	{"container", "String", "LowCardinality(String)", 0},
	{"pod", "String", "LowCardinality(String)", 0},
}

// CgroupColumns returns the names of the cgroup columns, in row order
// after PositionColumns.
func CgroupColumns() []string {
	out := make([]string, len(cgroupColumns))
	for i, c := range cgroupColumns {
		out[i] = c.name
	}
	return out
}

// AppendCgroup appends a row's cgroup columns (after AppendPosition).
func AppendCgroup(dst []byte, r *flow.Record) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, r.CgroupID)
	var n flow.CgroupNames
	if r.Cgroup != "" {
		n = r.CgroupNames()
	}
	for _, s := range []string{r.Cgroup, n.Unit, n.Container, n.Pod} {
		dst = appendString(dst, s)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Position is where a record stands in its flow files, the order the
// flow-file query engine reads records in: files by slot, then path,
// then the blocks of a file by offset and the records of a block in
// turn. Queries in ClickHouse order by it where the file engine keeps
// file order.
type Position struct {
	// Slot is the file's slot, its name's stamp read as UTC (as the
	// query engine reads it).
	Slot time.Time
	// File is the file's path (absolute, cleaned, with the name it
	// takes once finished: PREFIX.STAMP, not PREFIX.current.STAMP).
	File   string
	Offset int64 // the block's offset in the file
	Index  int   // the record's index in its block
}

// posIndexBits is how many low bits of file_pos hold the record's index
// in its block (blocks hold far fewer records); the block's offset is
// above them.
const posIndexBits = 20

// PositionColumns returns the names of the position columns, in row
// order after FlowColumns.
func PositionColumns() []string {
	out := make([]string, len(positionColumns))
	for i, c := range positionColumns {
		out[i] = c.name
	}
	return out
}

// InsertColumns are the columns of a row of AppendRow, AppendPosition
// and AppendCgroup.
func InsertColumns() []string {
	return append(append(FlowColumns(), PositionColumns()...), CgroupColumns()...)
}

// AppendPosition appends a row's position columns (after AppendRow). A
// slot outside DateTime's range is stored as 0.
func AppendPosition(dst []byte, p Position) []byte {
	slot := uint32(0)
	if fits(p.Slot) && !p.Slot.IsZero() {
		slot = uint32(p.Slot.Unix())
	}
	dst = binary.LittleEndian.AppendUint32(dst, slot)
	dst = appendString(dst, p.File)
	return binary.LittleEndian.AppendUint64(dst, uint64(p.Offset)<<posIndexBits|uint64(p.Index)&(1<<posIndexBits-1))
}

// RowSize is the RowBinary size of one flows row.
var RowSize = func() int {
	n := 0
	for _, c := range flowColumns {
		n += c.size
	}
	return n
}()

// FlowColumns returns the flows table's column names in row order.
func FlowColumns() []string {
	out := make([]string, len(flowColumns))
	for i, c := range flowColumns {
		out[i] = c.name
	}
	return out
}

// ErrUnrepresentable: a record holds a time the flows table cannot store
// (DateTime holds 1970-01-01 to 2106-02-07 UTC).
var ErrUnrepresentable = errors.New("record time outside what ClickHouse's DateTime holds")

// RowTime is the flows table's time of r: its end, else its start, else
// received.
func RowTime(r *flow.Record, received time.Time) time.Time {
	switch {
	case !r.End.IsZero():
		return r.End
	case !r.Start.IsZero():
		return r.Start
	}
	return received
}

// AppendRow appends r as a RowBinary row of the flows table. received
// stands for the record's time when it has none; block is the shipper's
// block identity. A time outside DateTime's range is ErrUnrepresentable.
// The Unix epoch itself and the IPv6 address :: read back as absent, and
// an IPv6 zone is not stored.
func AppendRow(dst []byte, r *flow.Record, received time.Time, block uint64) ([]byte, error) {
	t := RowTime(r, received)
	if !fits(t) || !fits(r.Start) || !fits(r.End) {
		return dst, fmt.Errorf("%w: start %v, end %v", ErrUnrepresentable, r.Start, r.End)
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(t.Unix()))
	dst = appendTime(dst, r.Start)
	dst = appendTime(dst, r.End)
	dst = appendAddr(dst, r.Exporter)
	dst = le.AppendUint32(dst, r.ObservationDomain)
	dst = append(dst, r.IPVersion())
	dst = appendAddr(dst, r.Src)
	dst = appendAddr(dst, r.Dst)
	dst = appendAddr(dst, r.NextHop)
	dst = le.AppendUint16(dst, r.SrcPort)
	dst = le.AppendUint16(dst, r.DstPort)
	dst = append(dst, r.Proto, r.ICMPType, r.ICMPCode)
	dst = le.AppendUint16(dst, r.VLAN)
	dst = le.AppendUint16(dst, r.InnerVLAN)
	dst = le.AppendUint32(dst, r.InIf)
	dst = le.AppendUint32(dst, r.OutIf)
	dst = append(dst, byte(r.Direction))
	dst = le.AppendUint64(dst, r.Packets)
	dst = le.AppendUint64(dst, r.Octets)
	dst = le.AppendUint16(dst, r.TCPFlags)
	dst = append(dst, r.TOS, r.MinTTL, r.MaxTTL, byte(r.EndReason))
	dst = le.AppendUint32(dst, r.SrcAS)
	dst = le.AppendUint32(dst, r.DstAS)
	dst = append(dst, r.SrcMask, r.DstMask)
	dst = le.AppendUint32(dst, r.SamplingInterval)
	return le.AppendUint64(dst, block), nil
}

// fits reports whether t is zero or within DateTime's range.
func fits(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	s := t.Unix()
	return s >= 0 && s <= math.MaxUint32
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(t.Unix()))
	return binary.LittleEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

func appendAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(dst, make([]byte, 16)...)
	}
	b := a.As16()
	return append(dst, b[:]...)
}

// Row is one row of the flows table read back.
type Row struct {
	Record flow.Record
	Time   time.Time
	Block  uint64
}

// DecodeRows decodes RowBinary rows of FlowColumns (SELECT ... FORMAT
// RowBinary). The input is outside data: a length that is not a whole
// number of rows is an error.
func DecodeRows(b []byte) ([]Row, error) {
	if len(b)%RowSize != 0 {
		return nil, fmt.Errorf("decode rows: %d bytes is not a whole number of %d-byte rows", len(b), RowSize)
	}
	rows := make([]Row, 0, len(b)/RowSize)
	for ; len(b) > 0; b = b[RowSize:] {
		row, err := decodeFixed(b[:RowSize])
		if err != nil {
			return nil, fmt.Errorf("decode rows: row %d: %w", len(rows), err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// RecordColumns are the columns of a whole record (DecodeRecords):
// FlowColumns, then cgroup_id and cgroup.
func RecordColumns() []string { return append(FlowColumns(), "cgroup_id", "cgroup") }

// DecodeRecords decodes RowBinary rows of RecordColumns. It decodes
// the whole rows b starts with and returns how many bytes they took: the
// rest is the start of a row whose end is still to come (a streamed
// answer read in pieces). The input is outside data: a cgroup path
// longer than maxCgroup is an error.
func DecodeRecords(b []byte) (rows []Row, n int, err error) {
	for {
		p := b[n:]
		if len(p) < RowSize+8 {
			return rows, n, nil
		}
		row, err := decodeFixed(p[:RowSize])
		if err != nil {
			return nil, 0, fmt.Errorf("decode records: row %d: %w", len(rows), err)
		}
		row.Record.CgroupID = binary.LittleEndian.Uint64(p[RowSize:])
		l, k := binary.Uvarint(p[RowSize+8:])
		switch {
		case k == 0:
			return rows, n, nil // the length is cut
		case k < 0 || l > maxCgroup:
			return nil, 0, fmt.Errorf("decode records: row %d: cgroup path length past %d bytes", len(rows), maxCgroup)
		}
		end := RowSize + 8 + k + int(l)
		if len(p) < end {
			return rows, n, nil
		}
		row.Record.Cgroup = string(p[RowSize+8+k : end])
		rows = append(rows, row)
		n += end
	}
}

// maxCgroup bounds a cgroup path read back (Linux's paths are at most
// PATH_MAX, 4096 bytes).
const maxCgroup = 1 << 16

// decodeFixed decodes one row of FlowColumns.
func decodeFixed(p []byte) (Row, error) {
	le := binary.LittleEndian
	var row Row
	r := &row.Record
	if le.Uint32(p[8:]) >= 1e9 || le.Uint32(p[16:]) >= 1e9 {
		return Row{}, errors.New("nanoseconds past a second")
	}
	row.Time = time.Unix(int64(le.Uint32(p)), 0).UTC()
	r.Start = readTime(p[4:])
	r.End = readTime(p[12:])
	r.Exporter = readAddr(p[20:])
	r.ObservationDomain = le.Uint32(p[36:])
	r.Src, r.Dst = readAddr(p[41:]), readAddr(p[57:])
	if p[40] == 6 || r.Src.Is6() {
		// An IPv6 flow keeps its addresses as they were, even
		// IPv4-mapped ones.
		r.Src, r.Dst = netip.AddrFrom16([16]byte(p[41:57])), netip.AddrFrom16([16]byte(p[57:73]))
	}
	r.NextHop = readAddr(p[73:])
	p = p[89:]
	r.SrcPort, r.DstPort = le.Uint16(p), le.Uint16(p[2:])
	r.Proto, r.ICMPType, r.ICMPCode = p[4], p[5], p[6]
	r.VLAN, r.InnerVLAN = le.Uint16(p[7:]), le.Uint16(p[9:])
	r.InIf, r.OutIf = le.Uint32(p[11:]), le.Uint32(p[15:])
	r.Direction = flow.Direction(p[19])
	r.Packets, r.Octets = le.Uint64(p[20:]), le.Uint64(p[28:])
	r.TCPFlags = le.Uint16(p[36:])
	r.TOS, r.MinTTL, r.MaxTTL, r.EndReason = p[38], p[39], p[40], flow.EndReason(p[41])
	r.SrcAS, r.DstAS = le.Uint32(p[42:]), le.Uint32(p[46:])
	r.SrcMask, r.DstMask = p[50], p[51]
	r.SamplingInterval = le.Uint32(p[52:])
	row.Block = le.Uint64(p[56:])
	return row, nil
}

func readTime(p []byte) time.Time {
	s, ns := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
	if s == 0 && ns == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), int64(ns)).UTC()
}

// readAddr reads a stored address: all zeros is no address, an
// IPv4-mapped one is IPv4.
func readAddr(p []byte) netip.Addr {
	a := netip.AddrFrom16([16]byte(p[:16]))
	if a == netip.IPv6Unspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

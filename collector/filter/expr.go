// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"net/netip"
	"slices"
)

// Expr is a filter's syntax tree, for backends that translate filters (a
// database's WHERE clause) instead of calling Match. Filter.Expr returns
// it. The node types are And, Or, Not, All and the primitives Compare,
// InNumbers, AddrIn, Family and Flags; values are parsed (numbers,
// netip addresses and prefixes), never the filter's text. A backend
// that cannot express a node says so in its error.
type Expr interface{ isExpr() }

// And matches when both sides match.
type And struct{ L, R Expr }

// Or matches when either side matches.
type Or struct{ L, R Expr }

// Not matches when X does not. Flags below an odd number of Nots test
// differently: see Flags.
type Not struct{ X Expr }

// All matches every record (an empty filter, "any").
type All struct{}

// Field is a record field a primitive tests.
type Field uint8

// Fields of primitives. Numbers are those of flow.Record, and the
// derived ones of its methods.
const (
	FieldSrc      Field = iota + 1 // address: the source
	FieldDst                       // address: the destination
	FieldExporter                  // address: the exporter
	FieldNextHop                   // address: the next hop
	FieldSrcPort
	// FieldDstPort is nfdump's destination port (flow.Record.NfDstPort):
	// ICMP type·256 + code for ICMP records without a port.
	FieldDstPort
	FieldProto
	FieldTOS
	FieldVLAN
	FieldSrcAS
	FieldDstAS
	FieldSrcMask
	FieldDstMask
	FieldInIf
	FieldOutIf
	FieldDirection // flow.Direction
	FieldPackets
	FieldBytes
	FieldFlows    // always 1 for a record
	FieldDuration // milliseconds (flow.Record.DurationMs)
	FieldPPS      // flow.Record.PPS
	FieldBPS      // flow.Record.BPS
	FieldBPP      // flow.Record.BPP
	// FieldICMPType and FieldICMPCode are the high and low byte of
	// FieldDstPort for ICMP and ICMPv6 records; a test of them is false
	// for any other protocol.
	FieldICMPType
	FieldICMPCode
	// FieldDomain is the observation domain (flow.Record.ObservationDomain);
	// FieldEngineType and FieldEngineID are its second and first byte,
	// where kflow's collector keeps NetFlow v5's engine type and id.
	FieldDomain
	FieldEngineType
	FieldEngineID
)

// IsAddr reports whether the field holds an address.
func (f Field) IsAddr() bool { return f >= FieldSrc && f <= FieldNextHop }

// Op is a comparison.
type Op uint8

// Comparisons.
const (
	EQ Op = iota
	NE
	LT
	GT
	LE
	GE
)

// Holds reports whether "a op b" holds.
func (o Op) Holds(a, b uint64) bool {
	switch o {
	case NE:
		return a != b
	case LT:
		return a < b
	case GT:
		return a > b
	case LE:
		return a <= b
	case GE:
		return a >= b
	}
	return a == b
}

// Compare matches when the numeric Field compares to Value by Op.
type Compare struct {
	Field Field
	Op    Op
	Value uint64
}

// InNumbers matches when the numeric Field is one of Values (ascending,
// distinct).
type InNumbers struct {
	Field  Field
	Values []uint64
}

// AddrIn matches when the address Field equals one of Addrs or lies in
// one of Nets, with netip's equality: an IPv4 address never equals an
// IPv6 one (IPv4-mapped addresses in filters are read as IPv4), and an
// address with a zone equals only an address with that zone. Addrs are
// sorted and distinct.
type AddrIn struct {
	Field Field
	Addrs []netip.Addr
	Nets  []netip.Prefix
}

// Family matches records whose source address is IPv6 (V6) or IPv4.
type Family struct{ V6 bool }

// Cgroup matches records by the local socket's cgroup (flow.Record.Cgroup,
// and the names flow.ParseCgroup finds in it): Kind is "unit" (the
// systemd unit; a name without a dot means NAME.service), "container"
// (the container id or a prefix of it), "pod" (the pod UID) or "cgroup"
// (the path or a path below it).
type Cgroup struct{ Kind, Value string }

// Ident matches records read from a file whose ident (the collector's
// -I, nfcapd's -I and -n) is Name.
type Ident struct{ Name string }

// Flags matches records whose TCP flags hold every bit of Mask; below an
// odd number of Nots, records that hold any bit of it (nfdump's rule:
// "not flags SF" is neither S nor F).
type Flags struct{ Mask uint16 }

func (And) isExpr()       {}
func (Or) isExpr()        {}
func (Not) isExpr()       {}
func (All) isExpr()       {}
func (Compare) isExpr()   {}
func (InNumbers) isExpr() {}
func (AddrIn) isExpr()    {}
func (Family) isExpr()    {}
func (Flags) isExpr()     {}
func (Ident) isExpr()     {}
func (Cgroup) isExpr()    {}

// Expr returns the filter's syntax tree.
func (f *Filter) Expr() Expr {
	if f.tree == nil {
		return All{}
	}
	return exprOf(f.tree)
}

func exprOf(n node) Expr {
	switch n := n.(type) {
	case andNode:
		return And{exprOf(n.l), exprOf(n.r)}
	case orNode:
		return Or{exprOf(n.l), exprOf(n.r)}
	case notNode:
		return Not{exprOf(n.x)}
	case leaf:
		return n.expr
	}
	return All{}
}

// byDirExpr combines a source and a destination primitive as byDir does.
func byDirExpr(d dir, src, dst Expr) Expr {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return And{src, dst}
	}
	return Or{src, dst}
}

// addrIn is the primitive of an address set.
func addrIn(f Field, addrs []netip.Addr, nets []netip.Prefix) AddrIn {
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	return AddrIn{Field: f, Addrs: slices.Compact(addrs), Nets: nets}
}

// numbersIn is the primitive of a number set.
func numbersIn(f Field, set map[uint64]struct{}) InNumbers {
	vals := make([]uint64, 0, len(set))
	for v := range set {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	return InNumbers{Field: f, Values: vals}
}

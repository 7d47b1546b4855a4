// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"math/bits"
	"net/netip"
	"slices"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// ColumnMatcher evaluates a filter on the columns of a piece of a block
// (flowfile.ScanOptions.Columns) instead of on records: each primitive
// over all the piece's values at once, an address test once per entry of
// the block's address dictionary. Its answers are Match's. It keeps
// state between pieces: one per goroutine (Filter.ColumnMatcher).
type ColumnMatcher struct {
	eval  colEval
	bufs  [][]uint64 // a bit set per depth of the tree
	depth int
	nfDst []uint16 // nfdump's destination ports of the piece, when asked
	nfOK  bool
}

// colEval sets out (a bit per record of b) to the records that pass.
type colEval func(m *ColumnMatcher, b *flowfile.Block, out []uint64)

// ColumnMatcher returns a matcher of the filter on columns, or false when
// the filter tests a field that a scan for columns does not decode
// (flowfile.ColumnFields) or a primitive it cannot test on them.
func (f *Filter) ColumnMatcher() (*ColumnMatcher, bool) {
	if f.fields&^flowfile.ColumnFields != 0 {
		return nil, false
	}
	ev, ok := colCompile(f.Expr())
	if !ok {
		return nil, false
	}
	return &ColumnMatcher{eval: ev}, true
}

// Match returns sel[:0] with the positions (ascending) of the records of
// b that pass. b must hold the columns of the filter's fields (Fields).
func (m *ColumnMatcher) Match(b *flowfile.Block, sel []int32) []int32 {
	m.nfOK = false
	m.depth = 0
	out := m.buf(b.Len)
	m.eval(m, b, out)
	sel = sel[:0]
	for w, x := range out {
		for x != 0 {
			sel = append(sel, int32(w*64+bits.TrailingZeros64(x)))
			x &= x - 1
		}
	}
	return sel
}

// buf returns a cleared bit set for n records, one per depth.
func (m *ColumnMatcher) buf(n int) []uint64 {
	words := (n + 63) / 64
	if m.depth == len(m.bufs) {
		m.bufs = append(m.bufs, nil)
	}
	b := m.bufs[m.depth]
	if cap(b) < words {
		b = make([]uint64, words)
	}
	b = b[:words]
	clear(b)
	m.bufs[m.depth] = b
	m.depth++
	return b
}

// fill sets the first n bits of out.
func fill(out []uint64, n int) {
	for i := range out {
		out[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		out[len(out)-1] = 1<<r - 1
	}
}

// nfDstPorts returns nfdump's destination port of each record of b
// (flow.Record.NfDstPort).
func (m *ColumnMatcher) nfDstPorts(b *flowfile.Block) []uint16 {
	if m.nfOK {
		return m.nfDst
	}
	if cap(m.nfDst) < b.Len {
		m.nfDst = make([]uint16, b.Len)
	}
	nf := m.nfDst[:b.Len]
	for k := range nf {
		var p uint16
		if b.DstPort != nil {
			p = b.DstPort[k]
		}
		if p == 0 && b.Proto != nil && b.ICMP != nil && (b.Proto[k] == flow.ProtoICMP || b.Proto[k] == flow.ProtoICMPv6) {
			p = b.ICMP[k] // as flow.Record.NfDstPort
		}
		nf[k] = p
	}
	m.nfDst, m.nfOK = nf, true
	return nf
}

func colCompile(e Expr) (colEval, bool) {
	switch e := e.(type) {
	case All:
		return func(_ *ColumnMatcher, b *flowfile.Block, out []uint64) { fill(out, b.Len) }, true
	case And, Or:
		var l, r Expr
		and := false
		if a, ok := e.(And); ok {
			l, r, and = a.L, a.R, true
		} else {
			o := e.(Or)
			l, r = o.L, o.R
		}
		le, ok1 := colCompile(l)
		re, ok2 := colCompile(r)
		if !ok1 || !ok2 {
			return nil, false
		}
		return func(m *ColumnMatcher, b *flowfile.Block, out []uint64) {
			le(m, b, out)
			tmp := m.buf(b.Len)
			re(m, b, tmp)
			m.depth--
			if and {
				for i := range out {
					out[i] &= tmp[i]
				}
			} else {
				for i := range out {
					out[i] |= tmp[i]
				}
			}
		}, true
	case Not:
		x, ok := colCompile(e.X)
		if !ok {
			return nil, false
		}
		return func(m *ColumnMatcher, b *flowfile.Block, out []uint64) {
			x(m, b, out)
			for i := range out {
				out[i] = ^out[i]
			}
			if r := b.Len % 64; r != 0 {
				out[len(out)-1] &= 1<<r - 1
			}
		}, true
	case Family:
		return colAddr(FieldSrc, func(a netip.Addr) bool { return a.Is6() == e.V6 && a.IsValid() }), true
	case AddrIn:
		if e.Field != FieldSrc && e.Field != FieldDst {
			return nil, false
		}
		// IPv4 networks as numbers: a block's dictionary holds about as
		// many addresses as it has records.
		type v4net struct {
			net   uint32
			shift uint
		}
		var v4s []v4net
		var others []netip.Prefix
		for _, n := range e.Nets {
			if n.IsValid() && n.Addr().Is4() {
				v4s = append(v4s, v4net{v4Bits(n.Addr()), uint(32 - n.Bits())})
			} else {
				others = append(others, n)
			}
		}
		return colAddr(e.Field, func(a netip.Addr) bool {
			if _, found := slices.BinarySearchFunc(e.Addrs, a, netip.Addr.Compare); found {
				return true
			}
			if a.Is4() {
				k := v4Bits(a)
				for _, n := range v4s {
					if uint64(k^n.net)>>n.shift == 0 {
						return true
					}
				}
			}
			for _, n := range others {
				if n.Contains(a) {
					return true
				}
			}
			return false
		}), true
	case Compare:
		test := func(v uint64) bool { return e.Op.Holds(v, e.Value) }
		return colNumber(e.Field, e.Op, e.Value, test)
	case InNumbers:
		test := func(v uint64) bool { _, found := slices.BinarySearch(e.Values, v); return found }
		return colNumber(e.Field, 255, 0, test)
	}
	return nil, false
}

// v4Bits is an IPv4 address as a number.
func v4Bits(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// colAddr tests the source or destination address of each record by
// testing each dictionary entry once per block.
func colAddr(f Field, test func(netip.Addr) bool) colEval {
	var dict uint64
	var pass []uint64 // 1 for the entries that pass
	have := false
	return func(_ *ColumnMatcher, b *flowfile.Block, out []uint64) {
		idx := b.SrcAddr
		if f == FieldDst {
			idx = b.DstAddr
		}
		if idx == nil {
			if test(netip.Addr{}) {
				fill(out, b.Len)
			}
			return
		}
		if !have || b.Dict != dict || len(pass) != len(b.Addrs) {
			pass = slices.Grow(pass[:0], len(b.Addrs))[:len(b.Addrs)]
			for i, a := range b.Addrs {
				pass[i] = b2u(test(a))
			}
			dict, have = b.Dict, true
		}
		for w := range out {
			lo := w * 64
			var acc uint64
			for k, i := range idx[lo:min(lo+64, len(idx))] {
				acc |= pass[i] << k
			}
			out[w] = acc
		}
	}
}

// colNumber tests a number field of each record: by op against v when op
// is a comparison (faster), else by test.
func colNumber(f Field, op Op, v uint64, test func(uint64) bool) (colEval, bool) {
	switch f {
	case FieldProto:
		var tbl [256]uint64
		for i := range tbl {
			if test(uint64(i)) {
				tbl[i] = 1
			}
		}
		return func(_ *ColumnMatcher, b *flowfile.Block, out []uint64) { tableBits(b.Proto, b.Len, &tbl, out) }, true
	case FieldSrcPort, FieldDstPort:
		tbl := make([]uint64, 1<<16/64)
		for i := range 1 << 16 {
			if test(uint64(i)) {
				tbl[i>>6] |= 1 << (i & 63)
			}
		}
		return func(m *ColumnMatcher, b *flowfile.Block, out []uint64) {
			col := b.SrcPort
			if f == FieldDstPort {
				col = m.nfDstPorts(b)
			}
			portBits(col, b.Len, tbl, out)
		}, true
	case FieldICMPType, FieldICMPCode:
		var tbl [256]bool
		for i := range tbl {
			tbl[i] = test(uint64(i))
		}
		return func(m *ColumnMatcher, b *flowfile.Block, out []uint64) {
			nf := m.nfDstPorts(b)
			for k, p := range nf {
				var proto uint8
				if b.Proto != nil {
					proto = b.Proto[k]
				}
				x := uint8(p)
				if f == FieldICMPType {
					x = uint8(p >> 8)
				}
				if (proto == flow.ProtoICMP || proto == flow.ProtoICMPv6) && tbl[x] {
					out[k>>6] |= 1 << (k & 63)
				}
			}
		}, true
	case FieldPackets, FieldBytes:
		return func(_ *ColumnMatcher, b *flowfile.Block, out []uint64) {
			col := b.Packets
			if f == FieldBytes {
				col = b.Octets
			}
			if col == nil {
				if test(0) {
					fill(out, b.Len)
				}
				return
			}
			if op <= GE {
				cmpBits(col, op, v, out)
				return
			}
			for k, x := range col {
				if test(x) {
					out[k>>6] |= 1 << (k & 63)
				}
			}
		}, true
	case FieldFlows:
		pass := test(1)
		return func(_ *ColumnMatcher, b *flowfile.Block, out []uint64) {
			if pass {
				fill(out, b.Len)
			}
		}, true
	}
	return nil, false
}

// tableBits sets the bits of the records whose byte passes tbl (1 for
// the bytes that pass); a nil column holds zeros.
func tableBits(col []uint8, n int, tbl *[256]uint64, out []uint64) {
	if col == nil {
		if tbl[0] != 0 {
			fill(out, n)
		}
		return
	}
	for w := range out {
		lo := w * 64
		var acc uint64
		for k, x := range col[lo:min(lo+64, len(col))] {
			acc |= tbl[x] << k
		}
		out[w] = acc
	}
}

// portBits sets the bits of the records whose port is in the bit set tbl
// (a nil column holds zeros).
func portBits(col []uint16, n int, tbl []uint64, out []uint64) {
	if col == nil {
		if tbl[0]&1 != 0 {
			fill(out, n)
		}
		return
	}
	for w := range out {
		lo := w * 64
		var acc uint64
		for k, x := range col[lo:min(lo+64, len(col))] {
			acc |= (tbl[x>>6] >> (x & 63) & 1) << k
		}
		out[w] = acc
	}
}

// cmpBits sets the bits of the records whose value compares to v by op.
func cmpBits(col []uint64, op Op, v uint64, out []uint64) {
	for w := range out {
		lo := w * 64
		var acc uint64
		part := col[lo:min(lo+64, len(col))]
		switch op {
		case EQ:
			for k, x := range part {
				acc |= b2u(x == v) << k
			}
		case NE:
			for k, x := range part {
				acc |= b2u(x != v) << k
			}
		case LT:
			for k, x := range part {
				acc |= b2u(x < v) << k
			}
		case GT:
			for k, x := range part {
				acc |= b2u(x > v) << k
			}
		case LE:
			for k, x := range part {
				acc |= b2u(x <= v) << k
			}
		case GE:
			for k, x := range part {
				acc |= b2u(x >= v) << k
			}
		}
		out[w] = acc
	}
}

// b2u is 1 for true, 0 for false (the compiler makes it a SETcc).
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

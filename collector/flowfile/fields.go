// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Fields is a set of flow.Record fields. A scan given fields decodes only
// those and leaves the others zero (ScanOptions.Fields); a block's columns
// are stored one after another with their lengths up front, so a column
// nobody reads is only checked, not decoded.
type Fields uint32

// The fields, one per column (a few columns hold two record fields).
const (
	FieldProto     Fields = 1 << iota
	FieldSrc              // Src
	FieldDst              // Dst
	FieldSrcPort          // SrcPort
	FieldDstPort          // DstPort
	FieldICMP             // ICMPType, ICMPCode
	FieldVLAN             // VLAN, InnerVLAN
	FieldInIf             // InIf
	FieldOutIf            // OutIf
	FieldDirection        // Direction
	FieldPackets          // Packets
	FieldOctets           // Octets
	FieldTimes            // Start, End
	FieldTCPFlags         // TCPFlags
	FieldTOS              // TOS
	FieldTTL              // MinTTL, MaxTTL
	FieldEndReason        // EndReason
	FieldNextHop          // NextHop
	FieldAS               // SrcAS, DstAS
	FieldMask             // SrcMask, DstMask
	FieldSampling         // SamplingInterval
	FieldExporter         // Exporter, ObservationDomain

	// AllFields is every field of flow.Record.
	AllFields = 1<<iota - 1
)

// Has reports whether f holds every field of g.
func (f Fields) Has(g Fields) bool { return f&g == g }

// Keep returns r with the fields outside f zeroed: what a scan for f
// returns for a record r.
func (f Fields) Keep(r flow.Record) flow.Record {
	var o flow.Record
	if f.Has(FieldProto) {
		o.Proto = r.Proto
	}
	if f.Has(FieldSrc) {
		o.Src = r.Src
	}
	if f.Has(FieldDst) {
		o.Dst = r.Dst
	}
	if f.Has(FieldSrcPort) {
		o.SrcPort = r.SrcPort
	}
	if f.Has(FieldDstPort) {
		o.DstPort = r.DstPort
	}
	if f.Has(FieldICMP) {
		o.ICMPType, o.ICMPCode = r.ICMPType, r.ICMPCode
	}
	if f.Has(FieldVLAN) {
		o.VLAN, o.InnerVLAN = r.VLAN, r.InnerVLAN
	}
	if f.Has(FieldInIf) {
		o.InIf = r.InIf
	}
	if f.Has(FieldOutIf) {
		o.OutIf = r.OutIf
	}
	if f.Has(FieldDirection) {
		o.Direction = r.Direction
	}
	if f.Has(FieldPackets) {
		o.Packets = r.Packets
	}
	if f.Has(FieldOctets) {
		o.Octets = r.Octets
	}
	if f.Has(FieldTimes) {
		o.Start, o.End = r.Start, r.End
	}
	if f.Has(FieldTCPFlags) {
		o.TCPFlags = r.TCPFlags
	}
	if f.Has(FieldTOS) {
		o.TOS = r.TOS
	}
	if f.Has(FieldTTL) {
		o.MinTTL, o.MaxTTL = r.MinTTL, r.MaxTTL
	}
	if f.Has(FieldEndReason) {
		o.EndReason = r.EndReason
	}
	if f.Has(FieldNextHop) {
		o.NextHop = r.NextHop
	}
	if f.Has(FieldAS) {
		o.SrcAS, o.DstAS = r.SrcAS, r.DstAS
	}
	if f.Has(FieldMask) {
		o.SrcMask, o.DstMask = r.SrcMask, r.DstMask
	}
	if f.Has(FieldSampling) {
		o.SamplingInterval = r.SamplingInterval
	}
	if f.Has(FieldExporter) {
		o.Exporter, o.ObservationDomain = r.Exporter, r.ObservationDomain
	}
	return o
}

// spread4 maps four flag bits to four 16-bit lanes, to count the records
// carrying each flag with one add per four flags.
var spread4 = func() (t [16]uint64) {
	for i := range t {
		for b := range 4 {
			if i&(1<<b) != 0 {
				t[i] |= 1 << (16 * b)
			}
		}
	}
	return t
}()

// flagCounts counts, per presence flag, the records carrying it.
type flagCounts struct {
	lanes [4]uint64 // flags 4j..4j+3 in 16-bit lanes of lanes[j]
	n     [16]int
	since int // adds since the lanes were emptied
}

func (c *flagCounts) add(f uint64) {
	c.lanes[0] += spread4[f&15]
	c.lanes[1] += spread4[f>>4&15]
	c.lanes[2] += spread4[f>>8&15]
	c.lanes[3] += spread4[f>>12&15]
	c.since++
	if c.since == 1<<16-1 {
		c.flush()
	}
}

func (c *flagCounts) flush() {
	for j, l := range c.lanes {
		for b := range 4 {
			c.n[4*j+b] += int(l >> (16 * b) & 0xffff)
		}
	}
	c.lanes, c.since = [4]uint64{}, 0
}

// of returns the number of records carrying flag (one bit).
func (c *flagCounts) of(flag uint64) int {
	i := 0
	for flag > 1 {
		flag >>= 1
		i++
	}
	return c.n[i]
}

// checkUvarints reports whether b holds exactly n uvarints, each at most
// max (pairs alternate max and max2).
func checkUvarints(b []byte, n int, max, max2 uint64, pairs bool) bool {
	if pairs {
		n *= 2
	}
	i := 0
	for k := range n {
		var v uint64
		if i < len(b) && b[i] < 0x80 {
			v = uint64(b[i])
			i++
		} else if v, i = uvAtSlow(b, i); i < 0 {
			return false
		}
		if v > max && (!pairs || k&1 == 0) || pairs && k&1 == 1 && v > max2 {
			return false
		}
	}
	return i == len(b)
}

var (
	errPreamble      = errors.New("malformed block preamble")
	errColumnLengths = errors.New("column lengths exceed block")
	errSubMsNoTime   = errors.New("sub-millisecond flag without time")
	errSubMsRange    = errors.New("sub-millisecond value out of range")
)

func errRecordCount(n uint64, count int) error {
	return fmt.Errorf("record count %d, header says %d", n, count)
}
func errDict(n uint64) error           { return fmt.Errorf("address dictionary of %d entries", n) }
func errFlags(f uint64) error          { return fmt.Errorf("unknown presence flags %#x", f) }
func errColumn(i int, err error) error { return fmt.Errorf("column %d: %w", i, err) }
func errTrailing(i, n int) error       { return fmt.Errorf("column %d: %d trailing bytes", i, n) }

// blockDecoder decodes blocks for a scan; it keeps its buffers between
// blocks.
type blockDecoder struct {
	addrs []netip.Addr
	cols  [numCols]fcur
	prev  int64
	flags []uint16
}

// preamble reads the block header and finds the columns.
func (d *blockDecoder) preamble(p []byte, count int) error {
	c := cursor{b: p}
	if n := c.uvarint(); n != uint64(count) {
		return errRecordCount(n, count)
	}
	d.prev = unzigzag(c.uvarint())
	ndict := c.uvarint()
	if ndict > uint64(len(c.b)) || ndict > 4*uint64(count) {
		return errDict(ndict)
	}
	if cap(d.addrs) < int(ndict)+1 {
		d.addrs = make([]netip.Addr, ndict+1, max(ndict+1, 256))
	}
	d.addrs = d.addrs[:ndict+1]
	d.addrs[0] = netip.Addr{}
	for i := 1; i < len(d.addrs); i++ {
		d.addrs[i] = c.addr()
	}
	ncols := c.uvarint()
	if c.bad || ncols < numCols || ncols > 1024 {
		return errPreamble
	}
	var lens [1024]uint64
	for i := range ncols {
		lens[i] = c.uvarint()
	}
	for i := range ncols {
		b := c.bytes(int(min(lens[i], uint64(len(c.b)+1))))
		if i < numCols {
			d.cols[i] = fcur{b: b}
		}
	}
	if c.bad {
		return errColumnLengths
	}
	return nil
}

// decode decodes the fields need of a block's records into dst, whose
// other fields must be zero (they are left alone). It goes column by
// column: the presence flags first, then each column needed in its own
// loop. A column holding none of need is checked as decodeBlock would
// check it, so that decode fails exactly when decodeBlock does.
func (d *blockDecoder) decode(p []byte, count int, dst []flow.Record, need Fields) ([]flow.Record, error) {
	if err := d.preamble(p, count); err != nil {
		return dst[:0], err
	}
	if cap(dst) < count {
		dst = make([]flow.Record, 0, count)
	}
	dst = dst[:count]
	if cap(d.flags) < count {
		d.flags = make([]uint16, count)
	}
	flags := d.flags[:count]
	cols := &d.cols
	var fc flagCounts
	nSub, nBoth := 0, 0
	fb, fi := cols[colFlags].b, 0
	for k := range flags {
		var f uint64
		if fi < len(fb) && fb[fi] < 0x80 {
			f = uint64(fb[fi])
			fi++
		} else if f, fi = uvAtSlow(fb, fi); fi < 0 {
			return dst[:0], errShort
		}
		if f&^fAll != 0 {
			return dst[:0], errFlags(f)
		}
		fc.add(f)
		nBoth += int(f >> 4 & (f >> 5) & 1)
		if f&fSubMs != 0 {
			if f&(fStart|fEnd) == 0 {
				return dst[:0], errSubMsNoTime
			}
			nSub += int(f>>4&1 + f>>5&1)
		}
		flags[k] = uint16(f)
	}
	fc.flush()
	ok := fi == len(fb)
	bytesCol := func(col int) []byte {
		b := cols[col].b
		if len(b) != count {
			ok = false
			return nil
		}
		return b
	}
	if ok && need&FieldProto != 0 {
		if b := bytesCol(colProto); ok {
			for k := range dst {
				dst[k].Proto = b[k]
			}
		}
	}
	if ok && need&FieldDirection != 0 {
		if b := bytesCol(colDirection); ok {
			for k := range dst {
				dst[k].Direction = flow.Direction(b[k])
			}
		}
	}
	if ok && need&FieldEndReason != 0 {
		if b := bytesCol(colEndReason); ok {
			for k := range dst {
				dst[k].EndReason = flow.EndReason(b[k])
			}
		}
	}
	if ok && need&FieldSrc != 0 {
		ok = decodeAddrs(&cols[colSrc], d.addrs, dst, true)
	}
	if ok && need&FieldDst != 0 {
		ok = decodeAddrs(&cols[colDst], d.addrs, dst, false)
	}
	if ok && need&(FieldSrcPort|FieldDstPort) != 0 {
		ok = d.decodePorts(dst, flags, need, fc.of(fPorts))
	}
	if ok && need&FieldPackets != 0 {
		b, i := cols[colPackets].b, 0
		for k := range dst {
			if i < len(b) && b[i] < 0x80 {
				dst[k].Packets = uint64(b[i])
				i++
			} else if dst[k].Packets, i = uvAtSlow(b, i); i < 0 {
				break
			}
		}
		ok = i == len(b)
	}
	if ok && need&FieldOctets != 0 {
		b, i := cols[colOctets].b, 0
		for k := range dst {
			if i < len(b) && b[i] < 0x80 {
				dst[k].Octets = uint64(b[i])
				i++
			} else if dst[k].Octets, i = uvAtSlow(b, i); i < 0 {
				break
			}
		}
		ok = i == len(b)
	}
	if ok && need&FieldTimes != 0 {
		var err error
		if ok, err = d.decodeTimes(dst, flags); err != nil {
			return dst[:0], err
		}
	}
	if ok && need&^(FieldProto|FieldDirection|FieldEndReason|FieldSrc|FieldDst|FieldSrcPort|FieldDstPort|FieldPackets|FieldOctets|FieldTimes) != 0 {
		ok = d.decodeRest(dst, flags, need)
	}
	if !ok || !d.checkSkipped(need, count, &fc, nSub, nBoth) {
		return dst[:0], errShort
	}
	return dst, nil
}

// done reports whether the column was read exactly.
func (c *fcur) done() bool { return !c.bad && c.i == len(c.b) }

func decodeAddrs(c *fcur, addrs []netip.Addr, dst []flow.Record, src bool) bool {
	b, i := c.b, 0
	for k := range dst {
		var a uint64
		if i < len(b) && b[i] < 0x80 {
			a = uint64(b[i])
			i++
		} else if a, i = uvAtSlow(b, i); i < 0 {
			return false
		}
		if a >= uint64(len(addrs)) {
			return false
		}
		if src {
			dst[k].Src = addrs[a]
		} else {
			dst[k].Dst = addrs[a]
		}
	}
	return i == len(b)
}

func (d *blockDecoder) decodePorts(dst []flow.Record, flags []uint16, need Fields, n int) bool {
	sp, dp := d.cols[colSrcPort].b, d.cols[colDstPort].b
	if need&FieldSrcPort != 0 && len(sp) != 2*n || need&FieldDstPort != 0 && len(dp) != 2*n {
		return false
	}
	j := 0 // the lengths were checked: j+1 < 2*n
	for k := range dst {
		r := &dst[k]
		if flags[k]&fPorts == 0 {
			r.SrcPort, r.DstPort = 0, 0
			continue
		}
		if need&FieldSrcPort != 0 {
			r.SrcPort = uint16(sp[j])<<8 | uint16(sp[j+1])
		}
		if need&FieldDstPort != 0 {
			r.DstPort = uint16(dp[j])<<8 | uint16(dp[j+1])
		}
		j += 2
	}
	return true
}

func (d *blockDecoder) decodeTimes(dst []flow.Record, flags []uint16) (bool, error) {
	tb, db, sc := d.cols[colTime].b, d.cols[colDuration].b, &d.cols[colSubMs]
	ti, di := 0, 0
	prev := d.prev
	for k := range dst {
		r := &dst[k]
		f := flags[k]
		if f&(fStart|fEnd) == 0 {
			r.Start, r.End = time.Time{}, time.Time{}
			continue
		}
		var u uint64
		if ti < len(tb) && tb[ti] < 0x80 {
			u = uint64(tb[ti])
			ti++
		} else if u, ti = uvAtSlow(tb, ti); ti < 0 {
			return false, nil
		}
		t := prev + unzigzag(u)
		prev = t
		var startSub, endSub uint64
		if f&fSubMs != 0 {
			if f&fStart != 0 {
				startSub = sc.uv()
			}
			if f&fEnd != 0 {
				endSub = sc.uv()
			}
			if startSub >= 1e6 || endSub >= 1e6 {
				return false, errSubMsRange
			}
		}
		switch f & (fStart | fEnd) {
		case fStart:
			r.Start, r.End = fastTime(t, startSub), time.Time{}
		case fEnd:
			r.Start, r.End = time.Time{}, fastTime(t, endSub)
		default:
			if di < len(db) && db[di] < 0x80 {
				u = uint64(db[di])
				di++
			} else if u, di = uvAtSlow(db, di); di < 0 {
				return false, nil
			}
			r.Start = fastTime(t-unzigzag(u), startSub)
			r.End = fastTime(t, endSub)
		}
	}
	return ti == len(tb) && di == len(db) && sc.done(), nil
}

// decodeRest decodes the columns seldom needed, record by record.
func (d *blockDecoder) decodeRest(dst []flow.Record, flags []uint16, need Fields) bool {
	cols := &d.cols
	addrs := d.addrs
	for k := range dst {
		r := &dst[k]
		f := uint64(flags[k])
		if need&FieldICMP != 0 {
			r.ICMPType, r.ICMPCode = 0, 0
			if f&fICMP != 0 {
				r.ICMPType = cols[colICMP].byte()
				r.ICMPCode = cols[colICMP].byte()
			}
		}
		if need&FieldVLAN != 0 {
			r.VLAN, r.InnerVLAN = 0, 0
			if f&fVLAN != 0 {
				r.VLAN = cols[colVLAN].u16()
				r.InnerVLAN = cols[colVLAN].u16()
			}
		}
		if need&FieldInIf != 0 {
			r.InIf = 0
			if f&fIf != 0 {
				r.InIf = cols[colInIf].u32()
			}
		}
		if need&FieldOutIf != 0 {
			r.OutIf = 0
			if f&fIf != 0 {
				r.OutIf = cols[colOutIf].u32()
			}
		}
		if need&FieldTCPFlags != 0 {
			r.TCPFlags = 0
			if f&fTCPFlags != 0 {
				r.TCPFlags = cols[colTCPFlags].u16()
			}
		}
		if need&FieldTOS != 0 {
			r.TOS = 0
			if f&fTOS != 0 {
				r.TOS = cols[colTOS].byte()
			}
		}
		if need&FieldTTL != 0 {
			r.MinTTL, r.MaxTTL = 0, 0
			if f&fTTL != 0 {
				r.MinTTL = cols[colTTL].byte()
				r.MaxTTL = cols[colTTL].byte()
			}
		}
		if need&FieldNextHop != 0 {
			r.NextHop = netip.Addr{}
			if f&fNextHop != 0 {
				r.NextHop = cols[colNextHop].addr(addrs)
			}
		}
		if need&FieldAS != 0 {
			r.SrcAS, r.DstAS = 0, 0
			if f&fAS != 0 {
				r.SrcAS = cols[colAS].u32()
				r.DstAS = cols[colAS].u32()
			}
		}
		if need&FieldMask != 0 {
			r.SrcMask, r.DstMask = 0, 0
			if f&fMask != 0 {
				r.SrcMask = cols[colMask].byte()
				r.DstMask = cols[colMask].byte()
			}
		}
		if need&FieldSampling != 0 {
			r.SamplingInterval = 0
			if f&fSampling != 0 {
				r.SamplingInterval = cols[colSampling].u32()
			}
		}
		if need&FieldExporter != 0 {
			r.Exporter, r.ObservationDomain = netip.Addr{}, 0
			if f&fExporter != 0 {
				r.Exporter = cols[colExporter].addr(addrs)
				r.ObservationDomain = cols[colExporter].u32()
			}
		}
	}
	for i := colICMP; i < numCols; i++ {
		if columnNeeded(i, need) && i != colTime && i != colDuration && i != colSubMs && !cols[i].done() {
			switch i {
			case colDirection, colPackets, colOctets, colEndReason:
				continue // checked by decode
			}
			return false
		}
	}
	return true
}

// columnNeeded reports whether column i holds a field of need.
func columnNeeded(i int, need Fields) bool {
	switch i {
	case colFlags:
		return true
	case colTime, colDuration, colSubMs:
		return need&FieldTimes != 0
	case colTCPFlags, colTOS, colTTL, colEndReason, colNextHop, colAS, colMask, colSampling, colExporter:
		return need&(FieldTCPFlags<<(i-colTCPFlags)) != 0
	}
	return need&(1<<(i-1)) != 0
}

// checkSkipped checks the columns decode did not read: they must hold as
// many values as the presence flags say, each in range.
func (d *blockDecoder) checkSkipped(need Fields, count int, fc *flagCounts, nSub, nBoth int) bool {
	cols := &d.cols
	maxIdx := uint64(len(d.addrs) - 1)
	const u16, u32, any = 1<<16 - 1, 1<<32 - 1, ^uint64(0)
	fixed := func(col, width, n int) bool { return len(cols[col].b) == width*n }
	vars := func(col, n int, max uint64) bool { return checkUvarints(cols[col].b, n, max, 0, false) }
	pairs := func(col, n int, max, max2 uint64) bool { return checkUvarints(cols[col].b, n, max, max2, true) }
	ok := true
	for i := colProto; i < numCols && ok; i++ {
		if columnNeeded(i, need) {
			continue
		}
		switch i {
		case colProto, colDirection, colEndReason:
			ok = fixed(i, 1, count)
		case colSrc, colDst:
			ok = vars(i, count, maxIdx)
		case colSrcPort, colDstPort:
			ok = fixed(i, 2, fc.of(fPorts))
		case colICMP:
			ok = fixed(i, 2, fc.of(fICMP))
		case colVLAN:
			ok = pairs(i, fc.of(fVLAN), u16, u16)
		case colInIf, colOutIf:
			ok = vars(i, fc.of(fIf), u32)
		case colPackets, colOctets:
			ok = vars(i, count, any)
		case colTime:
			ok = vars(i, fc.of(fStart)+fc.of(fEnd)-nBoth, any)
		case colDuration:
			ok = vars(i, nBoth, any)
		case colSubMs:
			ok = vars(i, nSub, 1e6-1)
		case colTCPFlags:
			ok = vars(i, fc.of(fTCPFlags), u16)
		case colTOS:
			ok = fixed(i, 1, fc.of(fTOS))
		case colTTL:
			ok = fixed(i, 2, fc.of(fTTL))
		case colNextHop:
			ok = vars(i, fc.of(fNextHop), maxIdx)
		case colAS:
			ok = pairs(i, fc.of(fAS), u32, u32)
		case colMask:
			ok = fixed(i, 2, fc.of(fMask))
		case colSampling:
			ok = vars(i, fc.of(fSampling), u32)
		case colExporter:
			ok = pairs(i, fc.of(fExporter), maxIdx, u32)
		}
	}
	return ok
}

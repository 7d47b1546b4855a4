// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// The block decoder: the one that Reader, Scan and ScanEach all use. It
// decodes a block column by column, only the columns holding the fields
// asked for, and checks the others without decoding them, so that a block
// fails the same way whatever fields are asked for.

// fcur is a cursor whose one-byte varint reads inline; the first failure
// sticks, as with cursor.
type fcur struct {
	b   []byte
	i   int
	bad bool
}

func (c *fcur) fail() { c.bad, c.i = true, len(c.b) }

func (c *fcur) uv() uint64 {
	if i := c.i; i < len(c.b) {
		if v := c.b[i]; v < 0x80 {
			c.i = i + 1
			return uint64(v)
		}
	}
	return c.uvSlow()
}

// subMs reads the sub-millisecond parts of a record's start and end
// (those its flags say it has); ok is false when one is out of range.
func (c *fcur) subMs(f uint16) (start, end uint64, ok bool) {
	if f&fStart != 0 {
		start = c.uv()
	}
	if f&fEnd != 0 {
		end = c.uv()
	}
	return start, end, start < 1e6 && end < 1e6
}

// uvAtSlow reads the uvarint at b[i:] (callers test for one byte
// themselves): v and the next index, or a negative index when b holds
// none.
func uvAtSlow(b []byte, i int) (uint64, int) {
	if i+2 < len(b) {
		if b[i+1] < 0x80 {
			return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2
		}
		if b[i+2] < 0x80 {
			return uint64(b[i]&0x7f) | uint64(b[i+1]&0x7f)<<7 | uint64(b[i+2])<<14, i + 3
		}
	}
	if i > len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return v, i + n
}

func (c *fcur) uvSlow() uint64 {
	b := c.b[c.i:]
	if len(b) >= 3 {
		if b[1] < 0x80 {
			c.i += 2
			return uint64(b[0]&0x7f) | uint64(b[1])<<7
		}
		if b[2] < 0x80 {
			c.i += 3
			return uint64(b[0]&0x7f) | uint64(b[1]&0x7f)<<7 | uint64(b[2])<<14
		}
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		c.fail()
		return 0
	}
	c.i += n
	return v
}

func (c *fcur) u32() uint32 {
	v := c.uv()
	if v > 1<<32-1 {
		c.fail()
		return 0
	}
	return uint32(v)
}

func (c *fcur) u16() uint16 {
	v := c.uv()
	if v > 1<<16-1 {
		c.fail()
		return 0
	}
	return uint16(v)
}

func (c *fcur) byte() byte {
	if c.i >= len(c.b) {
		c.bad = true
		return 0
	}
	c.i++
	return c.b[c.i-1]
}

func (c *fcur) addr(addrs []netip.Addr) netip.Addr {
	i := c.uv()
	if i < uint64(len(addrs)) {
		return addrs[i]
	}
	c.fail()
	return netip.Addr{}
}

// fastTime is joinTime without the intermediate Add.
func fastTime(ms int64, sub uint64) time.Time {
	return time.Unix(ms/1000, (ms%1000)*1e6+int64(sub)).UTC()
}

// flagCounts counts, per presence flag, the records carrying it.
type flagCounts struct {
	n [16]int
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
// max (pairs alternate max and max2). It counts the varints eight bytes at
// a time (countUvarints) and reads them one by one only when one of them
// is long enough to hold a value above its bound.
func checkUvarints(b []byte, n int, max, max2 uint64, pairs bool) bool {
	values, bound := n, max
	if pairs {
		values, bound = 2*n, min(max, max2)
	}
	if l := maxUvarintBytes(bound); l > 0 {
		if count, short := countUvarints(b, l); short {
			return count == values && (len(b) == 0 || b[len(b)-1] < 0x80)
		}
	}
	if !pairs && bound >= 1<<7-1 && bound < 1<<14-1 {
		// Dictionary indexes: one or two bytes, the two-byte ones
		// compared with the bound.
		if count, short := countUvarints(b, 2); short {
			return count == values && (len(b) == 0 || b[len(b)-1] < 0x80) && twoByteUvarintsAtMost(b, bound)
		}
	}
	return checkUvarintsSlow(b, n, max, max2, pairs)
}

// twoByteUvarintsAtMost reports whether every uvarint of b, which holds
// whole uvarints of one or two bytes, is at most max (at least 127). It
// compares eight varint starts at a time: the second bytes of the
// two-byte ones against max's, reading one by one only the words where
// one of them reaches it.
func twoByteUvarintsAtMost(b []byte, max uint64) bool {
	hiMax := max >> 7 // the largest second byte, with a bounded first
	bcast := hiMax * lowBits
	i := 0
	for ; i+9 <= len(b); i += 8 {
		cont := binary.LittleEndian.Uint64(b[i:]) & highBits
		if cont == 0 {
			continue
		}
		// The byte after each first byte of a two-byte varint (second
		// bytes have no continuation bit).
		second := binary.LittleEndian.Uint64(b[i+1:]) & ((cont >> 7) * 0xff)
		if hiMax < 0x80 && ((second|highBits)-bcast)&cont == 0 {
			continue // every second byte below hiMax
		}
		if !twoByteUvarintsAtMostSlow(b[i:i+9], max, 8) {
			return false
		}
	}
	return twoByteUvarintsAtMostSlow(b[i:], max, len(b)-i)
}

// lowBits has the lowest bit of each of eight bytes.
const lowBits = 0x0101010101010101

// twoByteUvarintsAtMostSlow is twoByteUvarintsAtMost a byte at a time,
// for the varints starting in b[:n].
func twoByteUvarintsAtMostSlow(b []byte, max uint64, n int) bool {
	for i := 0; i < n && i+1 < len(b); i++ {
		if b[i] >= 0x80 {
			if uint64(b[i]&0x7f)|uint64(b[i+1])<<7 > max {
				return false
			}
			i++
		}
	}
	return true
}

// highBits has the continuation bit of each of eight varint bytes.
const highBits = 0x8080808080808080

// countUvarints returns how many bytes of b end a uvarint (the bytes
// without the continuation bit), and whether no uvarint in b is longer
// than l bytes (1 ≤ l), that is, no l continuation bytes follow each
// other. The count is complete only when short is true.
func countUvarints(b []byte, l int) (count int, short bool) {
	run := 0 // continuation bytes at the end of the words so far
	i := 0
	for ; i+8 <= len(b); i += 8 {
		cont := binary.LittleEndian.Uint64(b[i:]) & highBits
		if cont == highBits {
			run += 8
			if run >= l {
				return count, false
			}
			continue
		}
		ends := cont ^ highBits
		count += bits.OnesCount64(ends)
		// The continuation bytes before the word's first end byte
		// extend the run the word before ended with.
		if run+bits.TrailingZeros64(ends)/8 >= l {
			return count, false
		}
		// Runs of l inside the word (a run of 8 or more is a whole
		// word).
		if l < 8 {
			r := cont
			for k := 1; k < l; k++ {
				r &= cont >> (8 * k)
			}
			if r != 0 {
				return count, false
			}
		}
		run = bits.LeadingZeros64(ends) / 8
	}
	for ; i < len(b); i++ {
		if b[i] < 0x80 {
			count++
			run = 0
		} else if run++; run >= l {
			return count, false
		}
	}
	return count, true
}

// maxUvarintBytes is the length of the longest uvarints whose every value
// is at most max (0 when max < 127, at most 9).
func maxUvarintBytes(max uint64) int {
	n := 0
	for v := uint64(1<<7 - 1); v <= max && n < 9; v = v<<7 | 1<<7 - 1 {
		n++
	}
	return n
}

// checkUvarintsSlow is checkUvarints one varint at a time.
func checkUvarintsSlow(b []byte, n int, max, max2 uint64, pairs bool) bool {
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
func errDict(n uint64) error  { return fmt.Errorf("address dictionary of %d entries", n) }
func errFlags(f uint64) error { return fmt.Errorf("unknown presence flags %#x", f) }
func errColumn(i int) error   { return fmt.Errorf("column %d: %w", i, errShort) }

// blockDecoder decodes block payloads; it keeps its buffers between
// blocks. Each Reader and each scan worker has its own.
type blockDecoder struct {
	addrs []netip.Addr
	cols  [numCols]fcur
	prev  int64
	flags []uint16
	// With indexes set, decode also keeps each record's source and
	// destination dictionary indexes (when it decodes Src, Dst).
	indexes        bool
	srcIdx, dstIdx []uint32
	// With columns set, decodeEach decodes into cols instead of records.
	columns bool
	colOut  colBuf
	// With keep set (records, neither indexes nor columns), decodeEach
	// decodes the fields keepFields of a chunk first, and the other
	// fields only when keep keeps one of the chunk's records: it skips
	// them, and hands over nothing, for a chunk whose records it drops
	// all. keep reads only keepFields.
	keep       func(*flow.Record) bool
	keepFields Fields
	// bothTimes: every record of the block has both times, none a
	// sub-millisecond part (decodeEach sets it).
	bothTimes bool
	// readFlags's count of records by flags value, and the values seen.
	flagHist *[fAll + 1]uint32
	flagSeen []uint16
	// The cgroup column (empty when the block has none), its dictionary
	// (from 1) and each record's index into it, read by readCgroups.
	cgroup  []byte
	cgroups []cgroupEntry
	cgIdx   []uint32
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
	d.cgroup = nil
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
		if i == colCgroup {
			d.cgroup = b
		}
	}
	if c.bad {
		return errColumnLengths
	}
	return nil
}

// decodeChunk is how many records decode takes through all the columns
// it reads before going on to the next ones: a chunk of records stays in
// the CPU cache from one column to the next, a whole block does not.
const decodeChunk = 512

// decode decodes the fields need of a block payload holding count records
// into dst. When need is not AllFields, the other fields of dst must be
// zero: they are left alone. It reads the presence flags first, then,
// chunk by chunk, each column needed in its own loop. A column holding
// none of need is checked without being decoded, so that decode fails for
// some fields exactly when it fails for all.
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
	if (d.indexes || d.columns) && cap(d.srcIdx) < count {
		d.srcIdx, d.dstIdx = make([]uint32, count), make([]uint32, count)
	}
	flags := d.flags[:count]
	cols := &d.cols
	fc, nSub, nBoth, err := d.readFlags(flags)
	if err != nil {
		return dst[:0], err
	}
	bad := -1 // the first malformed column found
	if !cols[colFlags].done() {
		bad = colFlags
	}
	if bad < 0 && !d.readCgroups(count, need&FieldCgroup != 0) {
		bad = colCgroup
	}
	// The fixed-width columns needed are checked by length up front.
	nPorts := fc.of(fPorts)
	for _, c := range [...]struct{ col, n int }{
		{colProto, count}, {colDirection, count}, {colEndReason, count},
		{colSrcPort, 2 * nPorts}, {colDstPort, 2 * nPorts},
	} {
		if bad < 0 && columnNeeded(c.col, need) && len(cols[c.col].b) != c.n {
			bad = c.col
		}
	}
	for lo := 0; lo < count && bad < 0; lo += decodeChunk {
		hi := min(lo+decodeChunk, count)
		var err error
		if bad, err = d.decodeChunk(dst[lo:hi], flags[lo:hi], lo, need); err != nil {
			return dst[:0], err
		}
	}
	// The other columns needed must have been read exactly.
	for i := colSrc; i < numCols && bad < 0; i++ {
		switch i {
		case colSrcPort, colDstPort, colDirection, colEndReason:
			continue
		}
		if columnNeeded(i, need) && !cols[i].done() {
			bad = i
		}
	}
	if bad < 0 {
		bad = d.checkSkipped(need, count, &fc, nSub, nBoth)
	}
	if bad >= 0 {
		return dst[:0], errColumn(bad)
	}
	return dst, nil
}

// readCgroups reads the cgroup column, if the block has one, into the
// dictionary and the records' indexes (the paths only when paths is
// set). It reports whether the column is well formed.
func (d *blockDecoder) readCgroups(count int, paths bool) bool {
	if len(d.cgroup) == 0 {
		return true
	}
	c := cursor{b: d.cgroup}
	n := c.uvarint()
	if c.bad || n > uint64(count) {
		return false
	}
	d.cgroups = d.cgroups[:0]
	for range n {
		id := c.uvarint()
		l := c.uvarint()
		if c.bad || l > maxCgroupPath {
			return false
		}
		b := c.bytes(int(l))
		if c.bad {
			return false
		}
		g := cgroupEntry{id: id}
		if paths {
			g.path = string(b)
		}
		d.cgroups = append(d.cgroups, g)
	}
	if cap(d.cgIdx) < count {
		d.cgIdx = make([]uint32, count)
	}
	d.cgIdx = d.cgIdx[:count]
	for i := range d.cgIdx {
		k := c.uvarint()
		if c.bad || k > n {
			return false
		}
		d.cgIdx[i] = uint32(k)
	}
	return !c.bad && len(c.b) == 0
}

// readFlags reads the presence flags of len(flags) records into flags and
// counts them: per flag, records with both times (nBoth) and sub-ms values
// (nSub). It leaves the flags column's position where the flags end.
func (d *blockDecoder) readFlags(flags []uint16) (fc flagCounts, nSub, nBoth int, err error) {
	fb, fi := d.cols[colFlags].b, 0
	// Records are counted by flags value (a block has few), then the
	// values' counts by flag.
	if d.flagHist == nil {
		d.flagHist = new([fAll + 1]uint32)
	}
	hist, seen := d.flagHist, d.flagSeen[:0]
	defer func() {
		for _, v := range seen {
			hist[v] = 0
		}
		d.flagSeen = seen
	}()
	for k := range flags {
		var f uint64
		if fi < len(fb) && fb[fi] < 0x80 {
			f = uint64(fb[fi])
			fi++
		} else if fi+2 < len(fb) && fb[fi+1] >= 0x80 && fb[fi+2] < 0x80 {
			f = uint64(fb[fi]&0x7f) | uint64(fb[fi+1]&0x7f)<<7 | uint64(fb[fi+2])<<14
			fi += 3
		} else if f, fi = uvAtSlow(fb, fi); fi < 0 {
			return fc, 0, 0, errColumn(colFlags)
		}
		if f&^fAll != 0 {
			return fc, 0, 0, errFlags(f)
		}
		if f&fSubMs != 0 && f&(fStart|fEnd) == 0 {
			return fc, 0, 0, errSubMsNoTime
		}
		if hist[f] == 0 {
			seen = append(seen, uint16(f))
		}
		hist[f]++
		flags[k] = uint16(f)
	}
	for _, v := range seen {
		f, n := uint64(v), int(hist[v])
		for b := range fc.n {
			fc.n[b] += n * int(f>>b&1)
		}
		nBoth += n * int(f>>4&(f>>5)&1)
		if f&fSubMs != 0 {
			nSub += n * int(f>>4&1+f>>5&1)
		}
	}
	d.cols[colFlags].i = fi
	return fc, nSub, nBoth, nil
}

// decodeEach is decode for consumers that take a block in pieces: it
// checks every column of the block first (as decode does the columns it
// does not need), then decodes the fields need chunk by chunk into buf
// and calls fn with each chunk and the position of its first record in
// the block, while the chunk is still in the CPU's cache. A malformed
// block (err) calls fn never, so it fails as decode fails; an error of fn
// (ferr) ends the block. The fields of buf outside need must be zero.
func (d *blockDecoder) decodeEach(p []byte, count int, buf []flow.Record, need Fields,
	fn func(recs []flow.Record, lo int) error) (_ []flow.Record, err, ferr error) {
	if err := d.preamble(p, count); err != nil {
		return buf, err, nil
	}
	if cap(buf) < decodeChunk && !d.columns {
		buf = make([]flow.Record, decodeChunk)
	}
	buf = buf[:cap(buf)]
	if cap(d.flags) < count {
		d.flags = make([]uint16, count)
	}
	if (d.indexes || d.columns) && cap(d.srcIdx) < count {
		d.srcIdx, d.dstIdx = make([]uint32, count), make([]uint32, count)
	}
	flags := d.flags[:count]
	fc, nSub, nBoth, err := d.readFlags(flags)
	if err != nil {
		return buf, err, nil
	}
	if !d.cols[colFlags].done() {
		return buf, errColumn(colFlags), nil
	}
	// Every column checked, none decoded: decodeChunk cannot fail now.
	d.bothTimes = nBoth == count && nSub == 0
	if bad := d.checkSkipped(0, count, &fc, nSub, nBoth); bad >= 0 {
		return buf, errColumn(bad), nil
	}
	if !d.readCgroups(count, need&FieldCgroup != 0) {
		return buf, errColumn(colCgroup), nil
	}
	first := d.firstFields(need)
	for lo := 0; lo < count; lo += decodeChunk {
		hi := min(lo+decodeChunk, count)
		var recs []flow.Record // none with columns
		bad, err := -1, error(nil)
		switch {
		case d.columns:
			bad, err = d.decodeCols(hi-lo, flags[lo:hi], lo, need)
		case first != 0:
			recs = buf[:hi-lo]
			if bad, err = d.decodeChunk(recs, flags[lo:hi], lo, first); bad >= 0 || err != nil {
				break
			}
			if !d.keepsAny(recs) {
				d.skipChunk(flags[lo:hi], need&^first)
				continue
			}
			bad, err = d.decodeChunk(recs, flags[lo:hi], lo, need&^first)
		default:
			recs = buf[:hi-lo]
			bad, err = d.decodeChunk(recs, flags[lo:hi], lo, need)
		}
		if bad >= 0 || err != nil {
			return buf, cmp.Or(err, errColumn(bad)), nil
		}
		if err := fn(recs, lo); err != nil {
			return buf, nil, err
		}
	}
	return buf, nil, nil
}

// firstFields is what decodeEach decodes of each chunk before it asks
// keep: keepFields (both ports when it holds one: they share a cursor),
// or 0 when it decodes every field of need at once.
func (d *blockDecoder) firstFields(need Fields) Fields {
	if d.keep == nil || d.columns || d.indexes {
		return 0
	}
	first := d.keepFields & need
	if first&(FieldSrcPort|FieldDstPort) != 0 {
		first |= need & (FieldSrcPort | FieldDstPort)
	}
	if first == need || d.keepFields&^need != 0 {
		return 0
	}
	return first
}

// skipChunk moves the cursors of the columns of need past the records of
// a chunk (flags are theirs) without decoding them, and keeps the times'
// running value. decodeEach checked every column whole before, so the
// values are there.
func (d *blockDecoder) skipChunk(flags []uint16, need Fields) {
	cols := &d.cols
	fc := countFlags(flags, skipFlags(need))
	n := len(flags)
	if need&FieldSrc != 0 {
		cols[colSrc].skip(n)
	}
	if need&FieldDst != 0 {
		cols[colDst].skip(n)
	}
	if need&(FieldSrcPort|FieldDstPort) != 0 {
		cols[colSrcPort].i += 2 * fc.of(fPorts) // one cursor for both
	}
	if need&FieldPackets != 0 {
		cols[colPackets].skip(n)
	}
	if need&FieldOctets != 0 {
		cols[colOctets].skip(n)
	}
	if need&FieldTimes != 0 {
		tc := &d.cols[colTime]
		for _, f := range flags {
			if f&(fStart|fEnd) == 0 {
				continue
			}
			d.prev += unzigzag(tc.uv())
			if f&fSubMs != 0 {
				cols[colSubMs].skip(bits.OnesCount16(f & (fStart | fEnd)))
			}
			if f&(fStart|fEnd) == fStart|fEnd {
				cols[colDuration].skip(1)
			}
		}
	}
	for _, c := range flaggedCols {
		if need&c.field == 0 {
			continue
		}
		if k := fc.of(uint64(c.flag)); c.fixed > 0 {
			cols[c.col].i += c.fixed * k
		} else {
			cols[c.col].skip(c.per * k)
		}
	}
}

// flaggedCols are the columns holding values only for the records whose
// presence flag is set, other than ports and times, as skipChunk skips
// them.
var flaggedCols = [...]struct {
	field      Fields
	col        int
	flag       uint16
	fixed, per int // fixed: bytes per record, else uvarints per record
}{
	{FieldICMP, colICMP, fICMP, 2, 0},
	{FieldVLAN, colVLAN, fVLAN, 0, 2},
	{FieldInIf, colInIf, fIf, 0, 1},
	{FieldOutIf, colOutIf, fIf, 0, 1},
	{FieldTCPFlags, colTCPFlags, fTCPFlags, 0, 1},
	{FieldTOS, colTOS, fTOS, 1, 0},
	{FieldTTL, colTTL, fTTL, 2, 0},
	{FieldNextHop, colNextHop, fNextHop, 0, 1},
	{FieldAS, colAS, fAS, 0, 2},
	{FieldMask, colMask, fMask, 2, 0},
	{FieldSampling, colSampling, fSampling, 0, 1},
	{FieldExporter, colExporter, fExporter, 0, 2},
}

// skipFlags are the presence flags skipChunk counts to skip the columns
// of need.
func skipFlags(need Fields) uint16 {
	var f uint16
	if need&(FieldSrcPort|FieldDstPort) != 0 {
		f |= fPorts
	}
	for _, c := range flaggedCols {
		if need&c.field != 0 {
			f |= c.flag
		}
	}
	return f
}

// countFlags counts the records of flags carrying each flag of want, four
// records at a time (their flags side by side in one word, one popcount
// per flag).
func countFlags(flags []uint16, want uint16) flagCounts {
	var fc flagCounts
	const lanes = 0x0001_0001_0001_0001
	k := 0
	for ; k+4 <= len(flags); k += 4 {
		x := uint64(flags[k]) | uint64(flags[k+1])<<16 | uint64(flags[k+2])<<32 | uint64(flags[k+3])<<48
		for w := want; w != 0; w &= w - 1 {
			b := bits.TrailingZeros16(w)
			fc.n[b] += bits.OnesCount64(x & (lanes << b))
		}
	}
	for ; k < len(flags); k++ {
		for w := want & flags[k]; w != 0; w &= w - 1 {
			fc.n[bits.TrailingZeros16(w)]++
		}
	}
	return fc
}

// keepsAny reports whether keep keeps one of recs.
func (d *blockDecoder) keepsAny(recs []flow.Record) bool {
	for i := range recs {
		if d.keep(&recs[i]) {
			return true
		}
	}
	return false
}

// skip moves c past n uvarints (each ends with a byte without the
// continuation bit): eight bytes at a time while more than eight are
// left, so that the n-th cannot end within the word, then byte by byte.
func (c *fcur) skip(n int) {
	b, i := c.b, c.i
	for n > 8 && i+8 <= len(b) {
		n -= bits.OnesCount64(binary.LittleEndian.Uint64(b[i:])&highBits ^ highBits)
		i += 8
	}
	for ; n > 0 && i < len(b); i++ {
		if b[i] < 0x80 {
			n--
		}
	}
	c.i = i
}

// decodeChunk decodes the fields need of the records dst, which start at
// record lo of the block, each column from where the chunk before left
// it. It returns the first malformed column found, or -1.
func (d *blockDecoder) decodeChunk(dst []flow.Record, flags []uint16, lo int, need Fields) (int, error) {
	cols := &d.cols
	hi := lo + len(dst)
	if need&FieldProto != 0 {
		b := cols[colProto].b[lo:hi]
		for k := range dst {
			dst[k].Proto = b[k]
		}
	}
	if need&FieldDirection != 0 {
		b := cols[colDirection].b[lo:hi]
		for k := range dst {
			dst[k].Direction = flow.Direction(b[k])
		}
	}
	if need&FieldEndReason != 0 {
		b := cols[colEndReason].b[lo:hi]
		for k := range dst {
			dst[k].EndReason = flow.EndReason(b[k])
		}
	}
	if need&FieldCgroup != 0 {
		// Every record's, none included: dst may hold an earlier block's.
		if len(d.cgroup) == 0 {
			for k := range dst {
				dst[k].CgroupID, dst[k].Cgroup = 0, ""
			}
		} else {
			for k, i := range d.cgIdx[lo:hi] {
				if i == 0 {
					dst[k].CgroupID, dst[k].Cgroup = 0, ""
					continue
				}
				g := &d.cgroups[i-1]
				dst[k].CgroupID, dst[k].Cgroup = g.id, g.path
			}
		}
	}
	var srcIdx, dstIdx []uint32
	if d.indexes {
		srcIdx, dstIdx = d.srcIdx[lo:hi], d.dstIdx[lo:hi]
	}
	if need&FieldSrc != 0 && !decodeAddrs(&cols[colSrc], d.addrs, dst, srcIdx, true) {
		return colSrc, nil
	}
	if need&FieldDst != 0 && !decodeAddrs(&cols[colDst], d.addrs, dst, dstIdx, false) {
		return colDst, nil
	}
	if need&(FieldSrcPort|FieldDstPort) != 0 {
		d.decodePorts(dst, flags, need)
	}
	if need&FieldPackets != 0 {
		c := &cols[colPackets]
		b, i := c.b, c.i
		for k := range dst {
			if i < len(b) && b[i] < 0x80 {
				dst[k].Packets = uint64(b[i])
				i++
			} else if dst[k].Packets, i = uvAtSlow(b, i); i < 0 {
				return colPackets, nil
			}
		}
		c.i = i
	}
	if need&FieldOctets != 0 {
		c := &cols[colOctets]
		b, i := c.b, c.i
		for k := range dst {
			if i < len(b) && b[i] < 0x80 {
				dst[k].Octets = uint64(b[i])
				i++
			} else if dst[k].Octets, i = uvAtSlow(b, i); i < 0 {
				return colOctets, nil
			}
		}
		c.i = i
	}
	if need&FieldTimes != 0 {
		if bad, err := d.decodeTimes(dst, flags); bad >= 0 || err != nil {
			return bad, err
		}
	}
	if need&^(FieldProto|FieldDirection|FieldEndReason|FieldSrc|FieldDst|FieldSrcPort|FieldDstPort|FieldPackets|FieldOctets|FieldTimes) != 0 {
		d.decodeRest(dst, flags, need)
	}
	return -1, nil
}

// done reports whether the column was read exactly.
func (c *fcur) done() bool { return !c.bad && c.i == len(c.b) }

// decodeAddrs decodes the next len(dst) addresses of c, and their
// dictionary indexes into idx unless it is nil; false if c does not hold
// them.
func decodeAddrs(c *fcur, addrs []netip.Addr, dst []flow.Record, idx []uint32, src bool) bool {
	b, i := c.b, c.i
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
		if idx != nil {
			idx[k] = uint32(a)
		}
		if src {
			dst[k].Src = addrs[a]
		} else {
			dst[k].Dst = addrs[a]
		}
	}
	c.i = i
	return true
}

// decodePorts decodes the ports of dst; the lengths of the port columns
// needed were checked. The source port column's position counts for both.
func (d *blockDecoder) decodePorts(dst []flow.Record, flags []uint16, need Fields) {
	sp, dp := d.cols[colSrcPort].b, d.cols[colDstPort].b
	j := d.cols[colSrcPort].i
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
	d.cols[colSrcPort].i = j
}

// decodeTimes decodes the times of dst; it returns the malformed column,
// or -1.
func (d *blockDecoder) decodeTimes(dst []flow.Record, flags []uint16) (int, error) {
	tc, dc, sc := &d.cols[colTime], &d.cols[colDuration], &d.cols[colSubMs]
	tb, db := tc.b, dc.b
	ti, di := tc.i, dc.i
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
			return colTime, nil
		}
		t := prev + unzigzag(u)
		prev = t
		var startSub, endSub uint64
		if f&fSubMs != 0 {
			var ok bool
			if startSub, endSub, ok = sc.subMs(f); !ok {
				return colSubMs, errSubMsRange
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
				return colDuration, nil
			}
			r.Start = fastTime(t-unzigzag(u), startSub)
			r.End = fastTime(t, endSub)
		}
	}
	tc.i, dc.i, d.prev = ti, di, prev
	return -1, nil
}

// decodeRest decodes the columns seldom needed, record by record. A
// malformed column is left marked bad.
func (d *blockDecoder) decodeRest(dst []flow.Record, flags []uint16, need Fields) {
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
// many values as the presence flags say, each in range. It returns the
// first that does not, or -1.
func (d *blockDecoder) checkSkipped(need Fields, count int, fc *flagCounts, nSub, nBoth int) int {
	if need == AllFields {
		return -1
	}
	cols := &d.cols
	maxIdx := uint64(len(d.addrs) - 1)
	const u16, u32, any = 1<<16 - 1, 1<<32 - 1, ^uint64(0)
	fixed := func(col, width, n int) bool { return len(cols[col].b) == width*n }
	vars := func(col, n int, max uint64) bool { return checkUvarints(cols[col].b, n, max, 0, false) }
	pairs := func(col, n int, max, max2 uint64) bool { return checkUvarints(cols[col].b, n, max, max2, true) }
	for i := colProto; i < numCols; i++ {
		if columnNeeded(i, need) {
			continue
		}
		var ok bool
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
		if !ok {
			return i
		}
	}
	return -1
}

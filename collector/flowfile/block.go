// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Columns of a block, in payload order. A record contributes to a column
// only when its presence flag says so; see docs/flowfile-format.md.
const (
	colFlags     = iota // uvarint presence bitmap
	colProto            // 1 byte
	colSrc              // uvarint address dictionary index (0: no address)
	colDst              // uvarint address dictionary index
	colSrcPort          // 2 bytes big endian        [fPorts]
	colDstPort          // 2 bytes big endian        [fPorts]
	colICMP             // type, code                [fICMP]
	colVLAN             // uvarint VLAN, InnerVLAN   [fVLAN]
	colInIf             // uvarint                   [fIf]
	colOutIf            // uvarint                   [fIf]
	colDirection        // 1 byte
	colPackets          // uvarint
	colOctets           // uvarint
	colTime             // zigzag ms delta of End (or Start) from the previous record's
	colDuration         // zigzag End-Start in ms    [fStart and fEnd]
	colSubMs            // uvarint ns within the ms of Start, End [fSubMs]
	colTCPFlags         // uvarint                   [fTCPFlags]
	colTOS              // 1 byte                    [fTOS]
	colTTL              // MinTTL, MaxTTL            [fTTL]
	colEndReason        // 1 byte
	colNextHop          // uvarint dictionary index  [fNextHop]
	colAS               // uvarint SrcAS, DstAS      [fAS]
	colMask             // SrcMask, DstMask          [fMask]
	colSampling         // uvarint                   [fSampling]
	colExporter         // uvarint dictionary index, uvarint domain [fExporter]
	numCols             // the columns every block has
	// colCgroup is written only by blocks that hold a record with a
	// cgroup (a reader of the 25 columns skips it): a dictionary of
	// (uvarint id, uvarint length, path) entries after its uvarint size,
	// then one uvarint dictionary index per record, 0 for none.
	colCgroup = numCols
)

// Presence flags (column colFlags).
const (
	fPorts = 1 << iota
	fICMP
	fVLAN
	fIf
	fStart
	fEnd
	fSubMs
	fTCPFlags
	fTOS
	fTTL
	fNextHop
	fAS
	fMask
	fSampling
	fExporter
	fAll = 1<<iota - 1
)

// blockEncoder builds an uncompressed block payload one record at a
// time (add), so that a writer holds a block's records only in their
// encoded columns, not as records. It is reused across blocks.
type blockEncoder struct {
	cols [numCols + 1][]byte
	n    int // records added since reset
	// blockRecords, when set, is the size of the writer's blocks: the
	// buffers are grown once to what a whole block needs (reserve).
	blockRecords int
	// The time column's state: the block's base and the previous
	// record's time.
	base, prev  int64
	haveBase    bool
	withCgroups bool
	// The cgroup dictionary of the block: (id, path) to index from 1.
	cgroups   map[cgroupEntry]uint64
	cgroupDic []cgroupEntry
	dict      addrDict
	naddrs    int      // addresses in the dictionary
	dictOut   []byte   // their encoding, in the payload's form
	out       []byte   // finish's payload
	ps        [][]byte // what pieces returns
	head      []byte   // the payload's record count, time base, address count
	lens      []byte   // its column count and lengths
	dic       []byte   // the cgroup dictionary
	// Addresses are looked up in the dictionary when the block is
	// finished, all in one loop, while the dictionary's tables stay in
	// the cache (looked up as records arrive, between datagrams, every
	// lookup missed it). Until then each record keeps references to its
	// addresses.
	srcRefs, dstRefs []addrRef
	nhRefs           []addrRef // of the records with fNextHop
	expRuns          []expRun  // of the records with fExporter
	recFlags         []uint8   // recNextHop, recExporter
	others           []netip.Addr
	fin              [4][]byte // finish's colSrc, colDst, colNextHop, colExporter
	// The last exporter seen: a block's records nearly all share it.
	lastExp    netip.Addr
	lastExpRef addrRef
	haveExp    bool
}

// addrRef refers to an address: 0 none, refV4|address for IPv4,
// refOther|i for others[i].
type addrRef uint64

const (
	refV4    addrRef = 1 << 32
	refOther addrRef = 2 << 32
)

// Which references a record has beyond its source and destination.
const (
	recNextHop = 1 << iota
	recExporter
)

// expRun is a run of records with the same exporter and domain.
type expRun struct {
	ref    addrRef
	domain uint32
	n      int
}

func newBlockEncoder() *blockEncoder {
	return &blockEncoder{}
}

type cgroupEntry struct {
	id   uint64
	path string
}

// maxCgroupPath bounds a stored cgroup path (the kernel's PATH_MAX).
const maxCgroupPath = 4096

// addrDict maps addresses to their dictionary index: open-addressing hash
// tables (the generic map hashed the whole netip.Addr and was most of the
// encoder's time). IPv4 addresses, nearly all of most blocks, have a table
// of 8-byte slots (index and address), so that a block's fits in a core's
// cache; IPv6 addresses one of their 16 octets; zoned addresses, which flow
// records practically never carry, a map.
type addrDict struct {
	v4    []uint64 // idx<<32 | address; 0: empty; len a power of two
	n4    int
	slots []dictSlot // IPv6; idx 0 marks an empty slot
	n     int
	zoned map[netip.Addr]uint64
}

type dictSlot struct {
	hi, lo uint64
	idx    uint64
}

func (d *addrDict) reset() {
	if d.n4 > 0 {
		clear(d.v4)
	}
	if d.n > 0 {
		clear(d.slots)
	}
	d.n4, d.n = 0, 0
	clear(d.zoned)
}

// lookup returns the index of a, or assigns it next (added is then true).
func (d *addrDict) lookup(a netip.Addr, next uint64) (idx uint64, added bool) {
	if a.Is4() {
		return d.lookup4(a.As4(), next)
	}
	if a.Zone() != "" {
		if d.zoned == nil {
			d.zoned = make(map[netip.Addr]uint64)
		}
		if i, ok := d.zoned[a]; ok {
			return i, false
		}
		d.zoned[a] = next
		return next, true
	}
	if 2*(d.n+1) > len(d.slots) {
		d.grow()
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	mask := uint64(len(d.slots) - 1)
	h := (hi*0x9e3779b97f4a7c15 ^ lo) * 0xff51afd7ed558ccd
	for i := h >> 32 & mask; ; i = (i + 1) & mask {
		s := &d.slots[i]
		if s.idx == 0 {
			*s = dictSlot{hi: hi, lo: lo, idx: next}
			d.n++
			return next, true
		}
		if s.hi == hi && s.lo == lo {
			return s.idx, false
		}
	}
}

// lookup4 is lookup for an IPv4 address. The table is kept at most three
// quarters full: linear probing then stays within a cache line or two.
func (d *addrDict) lookup4(b [4]byte, next uint64) (uint64, bool) {
	if 4*(d.n4+1) > 3*len(d.v4) {
		d.grow4()
	}
	k := uint64(binary.BigEndian.Uint32(b[:]))
	mask := uint64(len(d.v4) - 1)
	for i := v4Hash(k, mask); ; i = (i + 1) & mask {
		s := d.v4[i]
		if s == 0 {
			d.v4[i] = next<<32 | k
			d.n4++
			return next, true
		}
		if s&0xffffffff == k {
			return s >> 32, false
		}
	}
}

func v4Hash(k, mask uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> 32 & mask }

func (d *addrDict) grow4() {
	old := d.v4
	d.v4 = make([]uint64, max(1024, 2*len(old)))
	mask := uint64(len(d.v4) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := v4Hash(s&0xffffffff, mask)
		for d.v4[i] != 0 {
			i = (i + 1) & mask
		}
		d.v4[i] = s
	}
}

func (d *addrDict) grow() {
	old := d.slots
	d.slots = make([]dictSlot, max(256, 2*len(old)))
	mask := uint64(len(d.slots) - 1)
	for _, s := range old {
		if s.idx == 0 {
			continue
		}
		h := (s.hi*0x9e3779b97f4a7c15 ^ s.lo) * 0xff51afd7ed558ccd
		i := h >> 32 & mask
		for d.slots[i].idx != 0 {
			i = (i + 1) & mask
		}
		d.slots[i] = s
	}
}

// checkRecord reports whether r can be stored exactly.
func checkRecord(r *flow.Record) error {
	if !validTime(r.Start) || !validTime(r.End) {
		return fmt.Errorf("%w: time out of range", ErrInvalidRecord)
	}
	if !validAddr(r.Src) || !validAddr(r.Dst) || !validAddr(r.NextHop) || !validAddr(r.Exporter) {
		return fmt.Errorf("%w: ipv6 zone longer than %d bytes", ErrInvalidRecord, maxZoneLen)
	}
	if len(r.Cgroup) > maxCgroupPath {
		return fmt.Errorf("%w: cgroup path longer than %d bytes", ErrInvalidRecord, maxCgroupPath)
	}
	return nil
}

// ref returns a reference to a for the lookup at finish.
func (e *blockEncoder) ref(a netip.Addr) addrRef {
	switch {
	case !a.IsValid():
		return 0
	case a.Is4():
		b := a.As4()
		return refV4 | addrRef(binary.BigEndian.Uint32(b[:]))
	}
	e.others = append(e.others, a)
	return refOther | addrRef(len(e.others)-1)
}

// index returns the dictionary index of the address ref refers to,
// adding it to the dictionary on its first sight.
func (e *blockEncoder) index(r addrRef) uint64 {
	switch r &^ (1<<32 - 1) {
	case refV4:
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(r))
		i, added := e.dict.lookup4(b, uint64(e.naddrs+1))
		if added {
			e.addToDict(netip.AddrFrom4(b))
		}
		return i
	case refOther:
		a := e.others[uint32(r)]
		i, added := e.dict.lookup(a, uint64(e.naddrs+1))
		if added {
			e.addToDict(a)
		}
		return i
	}
	return 0
}

// addToDict appends a to the block's dictionary, in the payload's form.
func (e *blockEncoder) addToDict(a netip.Addr) {
	e.naddrs++
	e.dictOut = appendAddr(e.dictOut, a)
}

// cgroupIndex returns the block dictionary index of a cgroup, from 1.
func (e *blockEncoder) cgroupIndex(id uint64, path string) uint64 {
	g := cgroupEntry{id, path}
	if i, ok := e.cgroups[g]; ok {
		return i
	}
	if e.cgroups == nil {
		e.cgroups = make(map[cgroupEntry]uint64)
	}
	e.cgroupDic = append(e.cgroupDic, g)
	e.cgroups[g] = uint64(len(e.cgroupDic))
	return uint64(len(e.cgroupDic))
}

// encode returns the block payload for recs (valid until the next call).
func (e *blockEncoder) encode(recs []flow.Record) []byte {
	e.reset()
	for i := range recs {
		e.add(&recs[i])
	}
	return e.finish()
}

// reset starts a new block.
func (e *blockEncoder) reset() {
	for i := range e.cols {
		e.cols[i] = e.cols[i][:0]
	}
	e.n = 0
	e.lastExp, e.lastExpRef = netip.Addr{}, 0
	clear(e.cgroups)
	e.cgroupDic = e.cgroupDic[:0]
	e.withCgroups = false
	e.srcRefs, e.dstRefs, e.nhRefs = e.srcRefs[:0], e.dstRefs[:0], e.nhRefs[:0]
	e.expRuns, e.recFlags = e.expRuns[:0], e.recFlags[:0]
	clear(e.others)
	e.others = e.others[:0]
	e.haveExp = false
	e.base, e.prev, e.haveBase = 0, 0, false
}

// reserveAt is the number of records after which a block's buffers are
// grown to what the whole block needs at their size so far.
const reserveAt = 256

// reserve grows the block's buffers to what blockRecords records need at
// the bytes per record of the records so far, plus an eighth. Grown by
// appending, they would leave behind as much garbage as they end up
// holding, and in a collector that allocates nothing more once its
// buffers are grown, that garbage stayed resident: about 3 MiB for
// 32,768-record blocks.
//
// A buffer is grown only when it cannot hold the estimate itself: the
// eighth is room for the blocks that follow, whose estimates differ by
// a few percent. Grown whenever it lacked the eighth, each column of
// varying width was copied again in block after block, 1.2 MB of
// garbage over a million distinct flows.
func (e *blockEncoder) reserve() {
	// need is what a whole block needs of a buffer holding l items now.
	need := func(l int) int { return l * e.blockRecords / e.n }
	grow := func(b []byte) []byte {
		n := need(len(b))
		if cap(b) >= n {
			return b
		}
		nb := make([]byte, len(b), n+n/8)
		copy(nb, b)
		return nb
	}
	for i := range e.cols {
		e.cols[i] = grow(e.cols[i])
	}
	e.recFlags = grow(e.recFlags)
	if cap(e.srcRefs) < e.blockRecords {
		e.srcRefs = append(make([]addrRef, 0, e.blockRecords), e.srcRefs...)
		e.dstRefs = append(make([]addrRef, 0, e.blockRecords), e.dstRefs...)
	}
	if n := need(len(e.others)); cap(e.others) < n {
		e.others = append(make([]netip.Addr, 0, n+n/8), e.others...)
	}
}

// add encodes r as the block's next record.
func (e *blockEncoder) add(r *flow.Record) {
	if e.n == reserveAt && e.blockRecords > reserveAt {
		e.reserve()
	}
	i := e.n
	e.n++
	var f uint64
	if r.SrcPort != 0 || r.DstPort != 0 {
		f |= fPorts
	}
	if r.ICMPType != 0 || r.ICMPCode != 0 {
		f |= fICMP
	}
	if r.VLAN != 0 || r.InnerVLAN != 0 {
		f |= fVLAN
	}
	if r.InIf != 0 || r.OutIf != 0 {
		f |= fIf
	}
	var startMs, endMs int64
	var startSub, endSub uint64
	if !r.Start.IsZero() {
		f |= fStart
		startMs, startSub = splitTime(r.Start)
	}
	if !r.End.IsZero() {
		f |= fEnd
		endMs, endSub = splitTime(r.End)
	}
	if startSub != 0 || endSub != 0 {
		f |= fSubMs
	}
	if r.TCPFlags != 0 {
		f |= fTCPFlags
	}
	if r.TOS != 0 {
		f |= fTOS
	}
	if r.MinTTL != 0 || r.MaxTTL != 0 {
		f |= fTTL
	}
	if r.NextHop.IsValid() {
		f |= fNextHop
	}
	if r.SrcAS != 0 || r.DstAS != 0 {
		f |= fAS
	}
	if r.SrcMask != 0 || r.DstMask != 0 {
		f |= fMask
	}
	if r.SamplingInterval != 0 {
		f |= fSampling
	}
	if r.Exporter.IsValid() || r.ObservationDomain != 0 {
		f |= fExporter
	}

	c := &e.cols
	c[colFlags] = binary.AppendUvarint(c[colFlags], f)
	c[colProto] = append(c[colProto], r.Proto)
	e.srcRefs = append(e.srcRefs, e.ref(r.Src))
	e.dstRefs = append(e.dstRefs, e.ref(r.Dst))
	var rf uint8
	if f&fPorts != 0 {
		c[colSrcPort] = binary.BigEndian.AppendUint16(c[colSrcPort], r.SrcPort)
		c[colDstPort] = binary.BigEndian.AppendUint16(c[colDstPort], r.DstPort)
	}
	if f&fICMP != 0 {
		c[colICMP] = append(c[colICMP], r.ICMPType, r.ICMPCode)
	}
	if f&fVLAN != 0 {
		c[colVLAN] = binary.AppendUvarint(c[colVLAN], uint64(r.VLAN))
		c[colVLAN] = binary.AppendUvarint(c[colVLAN], uint64(r.InnerVLAN))
	}
	if f&fIf != 0 {
		c[colInIf] = binary.AppendUvarint(c[colInIf], uint64(r.InIf))
		c[colOutIf] = binary.AppendUvarint(c[colOutIf], uint64(r.OutIf))
	}
	c[colDirection] = append(c[colDirection], byte(r.Direction))
	c[colPackets] = binary.AppendUvarint(c[colPackets], r.Packets)
	c[colOctets] = binary.AppendUvarint(c[colOctets], r.Octets)
	if f&(fStart|fEnd) != 0 {
		t := endMs
		if f&fEnd == 0 {
			t = startMs
		}
		if !e.haveBase {
			e.base, e.prev, e.haveBase = t, t, true
		}
		c[colTime] = binary.AppendUvarint(c[colTime], zigzag(t-e.prev))
		e.prev = t
		if f&(fStart|fEnd) == fStart|fEnd {
			c[colDuration] = binary.AppendUvarint(c[colDuration], zigzag(endMs-startMs))
		}
	}
	if f&fSubMs != 0 {
		if f&fStart != 0 {
			c[colSubMs] = binary.AppendUvarint(c[colSubMs], startSub)
		}
		if f&fEnd != 0 {
			c[colSubMs] = binary.AppendUvarint(c[colSubMs], endSub)
		}
	}
	if f&fTCPFlags != 0 {
		c[colTCPFlags] = binary.AppendUvarint(c[colTCPFlags], uint64(r.TCPFlags))
	}
	if f&fTOS != 0 {
		c[colTOS] = append(c[colTOS], r.TOS)
	}
	if f&fTTL != 0 {
		c[colTTL] = append(c[colTTL], r.MinTTL, r.MaxTTL)
	}
	c[colEndReason] = append(c[colEndReason], byte(r.EndReason))
	if f&fNextHop != 0 {
		e.nhRefs = append(e.nhRefs, e.ref(r.NextHop))
		rf |= recNextHop
	}
	if f&fAS != 0 {
		c[colAS] = binary.AppendUvarint(c[colAS], uint64(r.SrcAS))
		c[colAS] = binary.AppendUvarint(c[colAS], uint64(r.DstAS))
	}
	if f&fMask != 0 {
		c[colMask] = append(c[colMask], r.SrcMask, r.DstMask)
	}
	if f&fSampling != 0 {
		c[colSampling] = binary.AppendUvarint(c[colSampling], uint64(r.SamplingInterval))
	}
	if f&fExporter != 0 {
		if !e.haveExp || r.Exporter != e.lastExp {
			e.lastExp, e.lastExpRef, e.haveExp = r.Exporter, e.ref(r.Exporter), true
		}
		if k := len(e.expRuns) - 1; k >= 0 && e.expRuns[k].ref == e.lastExpRef && e.expRuns[k].domain == r.ObservationDomain {
			e.expRuns[k].n++
		} else {
			e.expRuns = append(e.expRuns, expRun{ref: e.lastExpRef, domain: r.ObservationDomain, n: 1})
		}
		rf |= recExporter
	}
	e.recFlags = append(e.recFlags, rf)
	if r.CgroupID != 0 || r.Cgroup != "" {
		if !e.withCgroups {
			e.withCgroups = true
			for range i { // the records before: none
				c[colCgroup] = append(c[colCgroup], 0)
			}
		}
		c[colCgroup] = binary.AppendUvarint(c[colCgroup], e.cgroupIndex(r.CgroupID, r.Cgroup))
	} else if e.withCgroups {
		c[colCgroup] = append(c[colCgroup], 0)
	}
}

// finish returns the payload of the records added since reset (valid
// until the next call). It leaves the block as it is: more records may
// be added and finish called again.
func (e *blockEncoder) finish() []byte {
	pieces, n := e.pieces()
	if cap(e.out) < n {
		e.out = make([]byte, 0, n)
	}
	out := e.out[:0]
	for _, p := range pieces {
		out = append(out, p...)
	}
	e.out = out
	return out
}

// pieces returns the payload of the records added since reset as the
// consecutive pieces it is made of (the columns themselves, not copies;
// valid until the next call) and its length. A writer compresses them as
// they are: joined into one buffer, the payload took as much memory again
// as its columns. Like finish, it leaves the block as it is.
func (e *blockEncoder) pieces() ([][]byte, int) {
	e.lookupAddrs()
	cols := e.cols
	cols[colSrc], cols[colDst], cols[colNextHop], cols[colExporter] = e.fin[0], e.fin[1], e.fin[2], e.fin[3]
	dic := e.dic[:0] // the cgroup column's dictionary, before its indexes
	ncols := numCols
	if e.withCgroups {
		ncols++
		dic = binary.AppendUvarint(dic, uint64(len(e.cgroupDic)))
		for _, g := range e.cgroupDic {
			dic = binary.AppendUvarint(dic, g.id)
			dic = binary.AppendUvarint(dic, uint64(len(g.path)))
			dic = append(dic, g.path...)
		}
	}
	e.dic = dic
	head := e.head[:0]
	head = binary.AppendUvarint(head, uint64(e.n))
	head = binary.AppendUvarint(head, zigzag(e.base))
	head = binary.AppendUvarint(head, uint64(e.naddrs))
	e.head = head
	lens := e.lens[:0]
	lens = binary.AppendUvarint(lens, uint64(ncols))
	for i := range ncols {
		l := len(cols[i])
		if i == colCgroup {
			l += len(dic)
		}
		lens = binary.AppendUvarint(lens, uint64(l))
	}
	e.lens = lens
	ps := append(e.ps[:0], head, e.dictOut, lens)
	for i := range ncols {
		if i == colCgroup {
			ps = append(ps, dic)
		}
		ps = append(ps, cols[i])
	}
	e.ps = ps
	n := 0
	for _, p := range ps {
		n += len(p)
	}
	return ps, n
}

// lookupAddrs builds the dictionary and the address columns from the
// records' references, in the order of the records (source, destination,
// next hop, exporter), as if each had been looked up as it came.
func (e *blockEncoder) lookupAddrs() {
	e.dict.reset()
	e.naddrs, e.dictOut = 0, e.dictOut[:0]
	src, dst, nh, exp := e.fin[0][:0], e.fin[1][:0], e.fin[2][:0], e.fin[3][:0]
	// An index takes at most 3 bytes below 2^21 addresses: sized once,
	// not grown by appending (see reserve). The dictionary is sized for
	// an IPv4 address a record; past that it grows.
	if need := 3 * max(e.n, e.blockRecords); cap(src) < 3*e.n {
		src, dst = make([]byte, 0, need), make([]byte, 0, need)
	}
	if need := 5 * max(e.n, e.blockRecords); cap(e.dictOut) < 5*e.n {
		e.dictOut = make([]byte, 0, need)
	}
	var nhi, run, left int
	var expIdx uint64
	for i := range e.n {
		src = binary.AppendUvarint(src, e.index(e.srcRefs[i]))
		dst = binary.AppendUvarint(dst, e.index(e.dstRefs[i]))
		f := e.recFlags[i]
		if f&recNextHop != 0 {
			nh = binary.AppendUvarint(nh, e.index(e.nhRefs[nhi]))
			nhi++
		}
		if f&recExporter != 0 {
			if left == 0 {
				r := &e.expRuns[run]
				run++
				left = r.n
				expIdx = e.index(r.ref)
			}
			left--
			exp = binary.AppendUvarint(exp, expIdx)
			exp = binary.AppendUvarint(exp, uint64(e.expRuns[run-1].domain))
		}
	}
	e.fin[0], e.fin[1], e.fin[2], e.fin[3] = src, dst, nh, exp
}

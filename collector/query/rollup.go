// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Rollups: each flow file carries, in an auxiliary section, for every
// rollup dimension, the traffic per minute of its top values (by bytes),
// the exact traffic per minute of all its other values together (the
// rest), and the largest flows, packets and bytes any one of those other
// values has in the file (the bound). A long series of the top N values
// of one dimension then reads a few kilobytes per file instead of every
// record, and stays exact: the engine uses rollups only when the bounds
// prove that no value left in a rest could enter the top N, and that the
// top N were kept in every file; otherwise it scans. See docs/query.md.

// RollupName names the auxiliary section.
const RollupName = "rollup/2"

// RollupStep is the rollups' resolution.
const RollupStep = time.Minute

// rollupDims are the dimensions rolled up: those of few values, which a
// file's top values describe. Addresses and ports are left out: their
// top values over a day are rarely every file's (a host of a few large
// flows ranks high without ranking in most files), so rollups could not
// prove them, and building them cost the collector more than half its
// CPU on distinct flows. Series by address or port scan. rollupKey holds
// what they read of a record.
var rollupDims = []Element{ElemProto, ElemFlags, ElemTOS, ElemInIf, ElemOutIf, ElemVLAN, ElemExporter, ElemDir}

// rollupKeep is the number of values a file keeps per dimension: 1 per 64
// records, from 16 to MaxRollupKeep, so that rollups stay a small part of
// a file.
func rollupKeep(records uint64) int {
	return int(min(max(records/64, 16), MaxRollupKeep))
}

// MaxRollupKeep bounds the values a file keeps per dimension.
const MaxRollupKeep = 512

// rollupCounts are flows, packets and bytes.
type rollupCounts struct{ flows, packets, bytes uint64 }

func (c *rollupCounts) add(o rollupCounts) {
	c.flows += o.flows
	c.packets += o.packets
	c.bytes += o.bytes
}

// of returns the counts in unit u.
func (c *rollupCounts) of(u Unit) uint64 { return u.Of(c.flows, c.packets, c.bytes) }

// minuteCounts are the counts of the records starting in one minute.
type minuteCounts struct {
	minute int64 // since the epoch
	rollupCounts
}

// rollupValue accumulates one value of a dimension.
type rollupValue struct {
	v       Value
	total   rollupCounts
	minutes []minuteCounts // sparse, mostly in order of arrival
}

func (rv *rollupValue) add(m int64, c rollupCounts) {
	rv.total.add(c)
	n := len(rv.minutes)
	// Records of a few minutes arrive interleaved (the collector builds
	// rollups as records arrive): look for the minute among the last
	// entries before adding one, and merge the list when it grows, so
	// that it stays about as long as the minutes it holds.
	for i := n - 1; i >= max(0, n-4); i-- {
		if rv.minutes[i].minute == m {
			rv.minutes[i].add(c)
			return
		}
	}
	if n >= 64 && n == cap(rv.minutes) {
		rv.minutes = sortMinutes(rv.minutes)
	}
	rv.minutes = append(rv.minutes, minuteCounts{m, c})
}

// rollupDim accumulates one dimension: its values, numbered by an index.
type rollupDim struct {
	index *valueIndex
	vals  []rollupValue
}

// RollupBuilder builds a file's rollup section (a flowfile.AuxBuilder).
type RollupBuilder struct {
	records uint64
	dims    []rollupDim
	// cache sums the records of one minute and one value of every
	// dimension before they reach the dimensions: records of a stream
	// share a few such combinations, and the collector adds them one at
	// a time.
	cache [2 * rollupCacheSets]rollupSlot
	// exps numbers the exporters of the records so far for the cache's
	// keys (whose comparison and hash are then a few integers'); expNum
	// maps an exporter to its number. exp is the last record's exporter
	// and expIdx its number: the writer adds one record at a time, and a
	// stream's records nearly all share one. The zero values agree: the
	// zero address is number 0.
	exps   []netip.Addr
	expNum map[netip.Addr]uint32
	exp    netip.Addr
	expIdx uint32
}

// rollupKey is a minute and what the rollup dimensions read of a record,
// packed in three words: written field by field, a struct of narrow
// fields was copied whole right after, and the copy's 16-byte loads
// stalled on the narrow stores still in flight (store forwarding fails),
// a third of Add's time in the live collector.
//
//	minute: minute<<24 | proto<<16 | tos<<8 | direction (a minute of
//	        any int64 nanosecond time fits in 29 bits with its sign)
//	ifs:    inIf<<32 | outIf
//	rest:   exporter<<32 | TCP flags<<16 | VLAN (exporter: RollupBuilder.exps)
type rollupKey struct {
	minute, ifs, rest uint64
}

func makeRollupKey(r *flow.Record, exporter uint32) rollupKey {
	return rollupKey{
		minute: uint64(minuteOf(r.Start))<<24 | uint64(r.Proto)<<16 | uint64(r.TOS)<<8 | uint64(r.Direction),
		ifs:    uint64(r.InIf)<<32 | uint64(r.OutIf),
		rest:   uint64(exporter)<<32 | uint64(r.TCPFlags)<<16 | uint64(r.VLAN),
	}
}

// record returns the fields of the key's record the dimensions read, and
// its minute.
func (k *rollupKey) record(exps []netip.Addr) (flow.Record, int64) {
	return flow.Record{
		Exporter: exps[k.rest>>32], InIf: uint32(k.ifs >> 32), OutIf: uint32(k.ifs),
		TCPFlags: uint16(k.rest >> 16), VLAN: uint16(k.rest),
		Proto: uint8(k.minute >> 16), TOS: uint8(k.minute >> 8), Direction: flow.Direction(k.minute),
	}, int64(k.minute) >> 24
}

type rollupSlot struct {
	key  rollupKey
	c    rollupCounts
	used bool
}

// rollupCacheSets is the number of sets of the cache, two slots each: a
// key's set is its hash. Direct-mapped, 64 slots let two of the few
// combinations of a stream share a slot often (2 of the 9 of
// BenchmarkRollupAdd's records), and each then pushed the other out at
// every record; a third key of a set is far rarer.
const rollupCacheSets = 64

// hash returns the set of k in the cache (its slots are 2*set and 2*set+1).
func (k *rollupKey) hash() uint64 {
	h := (k.minute ^ k.ifs) * 0x9e3779b97f4a7c15
	h ^= k.rest
	return (h * 0xff51afd7ed558ccd) >> 58 // rollupCacheSets = 1<<6
}

// exporterIndex returns the number of exporter a, numbering it if new.
func (b *RollupBuilder) exporterIndex(a netip.Addr) uint32 {
	if i, ok := b.expNum[a]; ok {
		return i
	}
	i := uint32(len(b.exps))
	b.exps = append(b.exps, a)
	b.expNum[a] = i
	return i
}

// NewRollupBuilder returns an empty builder.
func NewRollupBuilder() *RollupBuilder {
	b := &RollupBuilder{dims: make([]rollupDim, len(rollupDims)),
		exps: []netip.Addr{{}}, expNum: map[netip.Addr]uint32{{}: 0}}
	for i, e := range rollupDims {
		b.dims[i].index = newValueIndex(e.IsAddr())
	}
	return b
}

// NewRollupBuilders is the flowfile.WriterOptions.Aux of files that carry
// rollups (the collector's and the exporter's).
func NewRollupBuilders() []flowfile.AuxBuilder { return []flowfile.AuxBuilder{NewRollupBuilder()} }

// Name implements flowfile.AuxBuilder.
func (b *RollupBuilder) Name() string { return RollupName }

// Fields implements flowfile.AuxBuilder.
func (b *RollupBuilder) Fields() flowfile.Fields {
	f := CounterFields
	for _, e := range rollupDims {
		f |= e.Fields()
	}
	return f
}

func minuteOf(t time.Time) int64 { return floorDiv(t.UnixNano(), int64(RollupStep)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Add implements flowfile.AuxBuilder. Records without a start are left
// out: no series counts them (a series' window needs a start).
func (b *RollupBuilder) Add(recs []flow.Record) {
	for i := range recs {
		r := &recs[i]
		if r.Start.IsZero() {
			continue
		}
		b.records++
		if r.Exporter != b.exp {
			b.exp, b.expIdx = r.Exporter, b.exporterIndex(r.Exporter)
		}
		k := makeRollupKey(r, b.expIdx)
		c := rollupCounts{1, r.Packets, r.Octets}
		set := b.cache[2*k.hash():][:2]
		if s := &set[0]; s.used && s.key == k {
			s.c.add(c)
			continue
		}
		if s := &set[1]; s.used && s.key == k {
			s.c.add(c)
			continue
		}
		// The newest key takes the first slot, the one there the second,
		// whose key leaves for the dimensions.
		if set[1].used {
			b.addKey(&set[1].key, set[1].c)
		}
		set[1] = set[0]
		set[0] = rollupSlot{key: k, c: c, used: true}
	}
}

// addKey adds counts to the values of a key in every dimension.
func (b *RollupBuilder) addKey(k *rollupKey, c rollupCounts) {
	r, minute := k.record(b.exps)
	for d, e := range rollupDims {
		v := Dim{Element: e}.value(&r)
		rd := &b.dims[d]
		i, added := rd.index.value(v)
		if added {
			rd.vals = append(rd.vals, rollupValue{v: v})
		}
		rd.vals[i].add(minute, c)
	}
}

// flushCache adds what the cache holds to the dimensions.
func (b *RollupBuilder) flushCache() {
	for i := range b.cache {
		if s := &b.cache[i]; s.used {
			b.addKey(&s.key, s.c)
			*s = rollupSlot{}
		}
	}
}

// Payload implements flowfile.AuxBuilder:
//
//	uvarint  format (2)
//	uvarint  table count T
//	T × { uvarint element (Element), uvarint length of the table in bytes }
//	T × table:
//	  uvarint  values not kept, then the bound: flows, packets, bytes
//	           (each the largest of any value not kept)
//	  uvarint  rest minute count R, then R × minute entry
//	  uvarint  kept value count K, then K × { value (addresses: 0 none,
//	           4 and 4 bytes, 6 and 16 bytes; numbers: uvarint), uvarint
//	           minute count M, then M × minute entry }
//
// A minute entry is uvarint zigzag(minute − previous minute of the list,
// the first from 0), uvarint flows, packets, bytes. Kept values are the
// file's top by bytes (ties by value); minutes ascend.
func (b *RollupBuilder) Payload() []byte {
	b.flushCache()
	keep := rollupKeep(b.records)
	var bodies [][]byte
	for d, e := range rollupDims {
		bodies = append(bodies, encodeRollupTable(e, b.dims[d].vals, keep))
	}
	out := binary.AppendUvarint(nil, 2)
	out = binary.AppendUvarint(out, uint64(len(rollupDims)))
	for d, e := range rollupDims {
		out = binary.AppendUvarint(out, uint64(e))
		out = binary.AppendUvarint(out, uint64(len(bodies[d])))
	}
	for _, body := range bodies {
		out = append(out, body...)
	}
	return out
}

func sortMinutes(ms []minuteCounts) []minuteCounts {
	slices.SortFunc(ms, func(x, y minuteCounts) int { return cmp.Compare(x.minute, y.minute) })
	out := ms[:0]
	for _, m := range ms {
		if n := len(out); n > 0 && out[n-1].minute == m.minute {
			out[n-1].add(m.rollupCounts)
			continue
		}
		out = append(out, m)
	}
	return out
}

func appendMinutes(out []byte, ms []minuteCounts) []byte {
	out = binary.AppendUvarint(out, uint64(len(ms)))
	prev := int64(0)
	for _, m := range ms {
		out = binary.AppendUvarint(out, zigzag(m.minute-prev))
		prev = m.minute
		out = binary.AppendUvarint(out, m.flows)
		out = binary.AppendUvarint(out, m.packets)
		out = binary.AppendUvarint(out, m.bytes)
	}
	return out
}

func encodeRollupTable(e Element, table []rollupValue, keep int) []byte {
	vals := make([]*rollupValue, len(table))
	for i := range table {
		vals[i] = &table[i]
	}
	slices.SortFunc(vals, func(x, y *rollupValue) int {
		return cmp.Or(cmp.Compare(y.total.bytes, x.total.bytes), x.v.compare(y.v))
	})
	kept := vals[:min(keep, len(vals))]
	var bound rollupCounts
	var rest []minuteCounts
	for _, rv := range vals[len(kept):] {
		bound.flows = max(bound.flows, rv.total.flows)
		bound.packets = max(bound.packets, rv.total.packets)
		bound.bytes = max(bound.bytes, rv.total.bytes)
		rest = append(rest, rv.minutes...)
	}
	out := binary.AppendUvarint(nil, uint64(len(vals)-len(kept)))
	out = binary.AppendUvarint(out, bound.flows)
	out = binary.AppendUvarint(out, bound.packets)
	out = binary.AppendUvarint(out, bound.bytes)
	out = appendMinutes(out, sortMinutes(rest))
	out = binary.AppendUvarint(out, uint64(len(kept)))
	for _, rv := range kept {
		if e.IsAddr() {
			out = appendRollupAddr(out, rv.v.Addr)
		} else {
			out = binary.AppendUvarint(out, uint64(rv.v.Num))
		}
		out = appendMinutes(out, sortMinutes(rv.minutes))
	}
	return out
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendRollupAddr stores an address: 0 none, 4 IPv4 (4 bytes), 6 IPv6
// (16 bytes; a zone is not kept: rollups group by address).
func appendRollupAddr(dst []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return append(append(dst, 4), b[:]...)
	case a.Is6():
		b := a.As16()
		return append(append(dst, 6), b[:]...)
	}
	return append(dst, 0)
}

// errRollup reports a rollup section that does not parse.
var errRollup = errors.New("malformed rollup")

// rollupReader walks a payload.
type rollupReader struct {
	b   []byte
	bad bool
}

func (r *rollupReader) uv() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rollupReader) take(n int) []byte {
	if len(r.b) < n {
		r.bad, r.b = true, nil
		return make([]byte, n)
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *rollupReader) addr() netip.Addr {
	switch r.take(1)[0] {
	case 0:
		return netip.Addr{}
	case 4:
		return netip.AddrFrom4([4]byte(r.take(4)))
	case 6:
		return netip.AddrFrom16([16]byte(r.take(16)))
	}
	r.bad, r.b = true, nil
	return netip.Addr{}
}

// minutes reads a minute list into dst.
func (r *rollupReader) minutes(dst []minuteCounts) []minuteCounts {
	n := r.uv()
	// A minute entry takes at least four bytes.
	if n > uint64(len(r.b))/4 {
		r.bad, r.b = true, nil
		return dst
	}
	prev := int64(0)
	for range n {
		m := prev + unzigzag(r.uv())
		prev = m
		dst = append(dst, minuteCounts{m, rollupCounts{r.uv(), r.uv(), r.uv()}})
	}
	return dst
}

// rollupTable is one dimension of a file's rollup, decoded.
type rollupTable struct {
	unkept uint64 // values not kept
	bound  rollupCounts
	rest   []minuteCounts
	kept   []rollupValue // minutes only; total unused
}

// readRollupTable decodes element e's table of a payload; ok is false
// when the rollup has none.
func readRollupTable(p []byte, e Element) (t rollupTable, ok bool, err error) {
	r := &rollupReader{b: p}
	if r.uv() != 2 {
		return t, false, fmt.Errorf("%w: unknown format", errRollup)
	}
	tables := r.uv()
	if tables > 64 {
		return t, false, fmt.Errorf("%w: %d tables", errRollup, tables)
	}
	var skip, length uint64
	found := false
	for range tables {
		el, n := Element(r.uv()), r.uv()
		switch {
		case el == e && !found:
			found, length = true, n
		case !found:
			skip += n
		}
	}
	if r.bad {
		return t, false, fmt.Errorf("%w: truncated directory", errRollup)
	}
	if !found {
		return t, false, nil
	}
	if skip > uint64(len(r.b)) || length > uint64(len(r.b))-skip {
		return t, false, fmt.Errorf("%w: table beyond the payload", errRollup)
	}
	r.b = r.b[skip : skip+length]
	t.unkept = r.uv()
	t.bound = rollupCounts{r.uv(), r.uv(), r.uv()}
	t.rest = r.minutes(nil)
	k := r.uv()
	if k > MaxRollupKeep {
		return t, false, fmt.Errorf("%w: %d kept values", errRollup, k)
	}
	t.kept = make([]rollupValue, k)
	for i := range t.kept {
		if e.IsAddr() {
			t.kept[i].v = Value{Addr: r.addr()}
		} else {
			v := r.uv()
			if v > 1<<32-1 {
				r.bad = true
			}
			t.kept[i].v = Value{Num: uint32(v)}
		}
		t.kept[i].minutes = r.minutes(nil)
	}
	if r.bad {
		return t, false, fmt.Errorf("%w: truncated table", errRollup)
	}
	return t, true, nil
}

// rollupPlan says whether a series request may be answered from
// rollups: no filter or limit, at most one dimension (rolled up, without
// prefix lengths), ranked by average, in whole minutes.
func rollupPlan(req *Request) (Element, bool) {
	s := req.Series
	if s == nil || req.Limit != 0 || req.Filter != nil && !req.Filter.MatchesAll() || len(s.Dims) > 1 || s.Rank != RankAvg || s.Keys != nil {
		return 0, false
	}
	step, start, _ := s.layout(req.Window)
	if step%RollupStep != 0 || start.UnixNano()%int64(RollupStep) != 0 {
		return 0, false
	}
	if len(s.Dims) == 0 {
		return ElemProto, true // any table holds every record once
	}
	d := s.Dims[0]
	return d.Element, d.Bits4 == 0 && d.Bits6 == 0 && slices.Contains(rollupDims, d.Element)
}

// SPDX-License-Identifier: Apache-2.0

package query

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// AggSpec says which fields aggregation keeps (nfdump's -A): the others
// are summed over. Address fields may carry prefix lengths, separately for
// IPv4 and IPv6 (srcip4/24, srcip6/64); -1 keeps the whole address.
type AggSpec struct {
	SrcIP, DstIP, SrcPort, DstPort, Proto  bool
	SrcBits4, SrcBits6, DstBits4, DstBits6 int
	// Records keeps, as nfdump does for -a, -b and -B, the OR of TCP
	// flags and the first record's TOS; with -A nfdump prints neither.
	Records bool
}

// FiveTuple is nfdump's -a: proto, addresses and ports, whole records.
func FiveTuple() AggSpec {
	return AggSpec{SrcIP: true, DstIP: true, SrcPort: true, DstPort: true, Proto: true,
		SrcBits4: -1, SrcBits6: -1, DstBits4: -1, DstBits6: -1, Records: true}
}

// ParseAggSpec parses a comma separated list of srcip, dstip, srcport,
// dstport, proto, srcip4/N, srcip6/N, dstip4/N, dstip6/N.
func ParseAggSpec(s string) (AggSpec, error) {
	a := AggSpec{SrcBits4: -1, SrcBits6: -1, DstBits4: -1, DstBits6: -1}
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		name, bitsText, hasBits := strings.Cut(f, "/")
		bits := -1
		if hasBits {
			n, err := strconv.Atoi(bitsText)
			if err != nil || n < 0 {
				return AggSpec{}, fmt.Errorf("aggregation %q: bad prefix length in %q", s, f)
			}
			bits = n
		}
		bad := func(max int) error {
			if hasBits && bits > max {
				return fmt.Errorf("aggregation %q: prefix length in %q exceeds %d", s, f, max)
			}
			return nil
		}
		var err error
		switch name {
		case "srcip":
			a.SrcIP = true
			if hasBits {
				err = fmt.Errorf("aggregation %q: %q: give the family (srcip4/N, srcip6/N)", s, f)
			}
		case "dstip":
			a.DstIP = true
			if hasBits {
				err = fmt.Errorf("aggregation %q: %q: give the family (dstip4/N, dstip6/N)", s, f)
			}
		case "srcip4":
			a.SrcIP, a.SrcBits4, err = true, bits, bad(32)
		case "srcip6":
			a.SrcIP, a.SrcBits6, err = true, bits, bad(128)
		case "dstip4":
			a.DstIP, a.DstBits4, err = true, bits, bad(32)
		case "dstip6":
			a.DstIP, a.DstBits6, err = true, bits, bad(128)
		case "srcport":
			a.SrcPort = true
		case "dstport":
			a.DstPort = true
		case "proto":
			a.Proto = true
		default:
			return AggSpec{}, fmt.Errorf("aggregation %q: unknown element %q (want srcip, dstip, srcport, dstport, proto, srcip4/N, srcip6/N, dstip4/N, dstip6/N)", s, f)
		}
		if hasBits && bits < 0 {
			err = fmt.Errorf("aggregation %q: bad prefix length in %q", s, f)
		}
		if err != nil {
			return AggSpec{}, err
		}
	}
	return a, nil
}

// Key is an aggregation key.
type Key struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
}

func (k Key) reverse() Key {
	return Key{Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort, Proto: k.Proto}
}

func mask(a netip.Addr, bits4, bits6 int) netip.Addr {
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	if bits < 0 || !a.IsValid() {
		return a
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return p.Addr()
}

func (a *AggSpec) key(r *flow.Record) Key {
	var k Key
	if a.SrcIP {
		k.Src = mask(r.Src, a.SrcBits4, a.SrcBits6)
	}
	if a.DstIP {
		k.Dst = mask(r.Dst, a.DstBits4, a.DstBits6)
	}
	if a.SrcPort {
		k.SrcPort = r.SrcPort
	}
	if a.DstPort {
		k.DstPort = r.NfDstPort()
	}
	if a.Proto {
		k.Proto = r.Proto
	}
	return k
}

// Bidir selects bidirectional pairing.
type Bidir uint8

const (
	// Unidirectional aggregation.
	Unidirectional Bidir = iota
	// Paired (nfdump -b): a record whose reverse key was seen first is
	// counted as that entry's output direction.
	Paired
	// PairedGuess (nfdump -B): as Paired, but a TCP or UDP record whose
	// source port looks like the server's is first turned around (see
	// serverFirst); the counters of a turned record are the output
	// direction.
	PairedGuess
)

// Agg is one aggregated record: its key and what it keeps of its first
// record (rec), the summed counters of the input direction with the
// earliest start and latest end (in), and of the output direction of a
// bidirectional pair (Out). TCP flags are, as nfdump keeps them, the OR
// over the records that went the way of the record that made the entry
// (a pair's other direction is not ORed in), and none when the spec does
// not keep flags.
type Agg struct {
	rec   aggRec
	Flows uint64
	Out   Counter
	in    Counter
	// flags of the records counted in each direction; firstOut: the
	// record that made the entry was counted as the output direction.
	inFlags, outFlags uint16
	firstOut          bool
}

// aggRec is what an aggregated record keeps of flow.Record's fields: the
// key's and those keepFirst copies. A whole record took 256 bytes of the
// entry, and `-B` keeps an entry for about every flow.
type aggRec struct {
	src, dst, exporter, nextHop       netip.Addr
	inIf, outIf, srcAS, dstAS, domain uint32
	srcPort, dstPort, tcpFlags        uint16
	vlan, innerVLAN                   uint16
	proto, icmpType, icmpCode, tos    uint8
	srcMask, dstMask                  uint8
	dir                               flow.Direction
}

// record returns the record the entry stands for, counters aside.
func (a *aggRec) record(r *flow.Record) {
	*r = flow.Record{
		Src: a.src, Dst: a.dst, SrcPort: a.srcPort, DstPort: a.dstPort, Proto: a.proto,
		ICMPType: a.icmpType, ICMPCode: a.icmpCode, VLAN: a.vlan, InnerVLAN: a.innerVLAN,
		InIf: a.inIf, OutIf: a.outIf, Direction: a.dir, TCPFlags: a.tcpFlags, TOS: a.tos,
		NextHop: a.nextHop, SrcAS: a.srcAS, DstAS: a.dstAS, SrcMask: a.srcMask, DstMask: a.dstMask,
		Exporter: a.exporter, ObservationDomain: a.domain,
	}
}

// TCPFlags returns the entry's TCP flags (see Agg).
func (g *Agg) TCPFlags() uint16 {
	if g.firstOut {
		return g.outFlags
	}
	return g.inFlags
}

// Counter returns the input direction's counters with both directions'
// span.
func (g *Agg) Counter() Counter {
	c := g.in
	c.Flows = g.Flows
	if g.Out.First != 0 && (c.First == 0 || g.Out.First < c.First) {
		c.First = g.Out.First
	}
	if g.Out.Last > c.Last {
		c.Last = g.Out.Last
	}
	return c
}

// Aggregator groups records by an AggSpec.
type Aggregator struct {
	Spec  AggSpec
	Bidir Bidir
	// The entries in the order of first appearance, in chunks (they
	// never move), and an open-addressing table of their positions + 1
	// by key: an entry holds its key, so the table holds 8–16 bytes an
	// entry where a map from key to entry held 64 and more.
	aggs  [][]Agg
	n     int
	slots []int32 // len a power of two, at most half full; 0: empty
}

// aggChunk is the number of entries of a chunk of Aggregator.aggs.
const aggChunk = 4096

// key returns the entry's key.
func (g *Agg) key() Key {
	return Key{Src: g.rec.src, Dst: g.rec.dst, SrcPort: g.rec.srcPort, DstPort: g.rec.dstPort, Proto: g.rec.proto}
}

// hash mixes a key's fields (an address's zone aside: equal keys hash
// alike, which is all the table needs).
func (k *Key) hash() uint64 {
	s, d := k.Src.As16(), k.Dst.As16()
	h := binary.LittleEndian.Uint64(s[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(s[8:])
	h = (h^h>>29)*0xbf58476d1ce4e5b9 ^ binary.LittleEndian.Uint64(d[:8])
	h = (h^h>>31)*0x94d049bb133111eb ^ binary.LittleEndian.Uint64(d[8:])
	h = (h^h>>29)*0x9e3779b97f4a7c15 ^ uint64(k.SrcPort)<<24 ^ uint64(k.DstPort)<<8 ^ uint64(k.Proto)
	return (h ^ h>>32) * 0xff51afd7ed558ccd
}

// at returns entry i.
func (a *Aggregator) at(i int) *Agg { return &a.aggs[i/aggChunk][i%aggChunk] }

// probe returns the slot of k's entry and the entry, or the empty slot
// where it would go and nil. The table must not be empty.
func (a *Aggregator) probe(k Key) (uint64, *Agg) {
	mask := uint64(len(a.slots) - 1)
	for i := k.hash() & mask; ; i = (i + 1) & mask {
		j := a.slots[i]
		if j == 0 {
			return i, nil
		}
		if g := a.at(int(j - 1)); g.key() == k {
			return i, g
		}
	}
}

// find returns the entry of k, nil if there is none.
func (a *Aggregator) find(k Key) *Agg {
	if len(a.slots) == 0 {
		return nil
	}
	_, g := a.probe(k)
	return g
}

// grow doubles the table.
func (a *Aggregator) grow() {
	slots := make([]int32, max(1024, 2*len(a.slots)))
	mask := uint64(len(slots) - 1)
	for i := range a.n {
		k := a.at(i).key()
		j := k.hash() & mask
		for slots[j] != 0 {
			j = (j + 1) & mask
		}
		slots[j] = int32(i + 1)
	}
	a.slots = slots
}

// NewAggregator returns an empty aggregator. Bidirectional pairing keys
// by the five-tuple whatever spec says.
func NewAggregator(spec AggSpec, bidir Bidir) *Aggregator {
	if bidir != Unidirectional {
		spec = FiveTuple()
	}
	return &Aggregator{Spec: spec, Bidir: bidir}
}

// entry returns the entry of k, made if there is none.
func (a *Aggregator) entry(k Key) *Agg {
	if 2*(a.n+1) > len(a.slots) {
		a.grow()
	}
	i, g := a.probe(k)
	if g != nil {
		return g
	}
	if a.n == len(a.aggs)*aggChunk {
		a.aggs = append(a.aggs, make([]Agg, aggChunk))
	}
	a.slots[i] = int32(a.n + 1)
	g = a.at(a.n)
	a.n++
	r := &g.rec
	r.src, r.dst, r.srcPort, r.proto = k.Src, k.Dst, k.SrcPort, k.Proto
	r.dstPort = k.DstPort
	return g
}

// Add counts r.
func (a *Aggregator) Add(r *flow.Record) {
	var c Counter
	c.Add(r)
	a.AddCounts(r, c)
}

// AddCounts counts c (flows, packets, bytes and span) as records of r's
// key, TCP flags and ICMP type and code: what a database's GROUP BY of one
// key gives, added in the order the keys were first seen. Bidirectional
// pairing depends only on that order, so pairing groups equals pairing
// their records.
func (a *Aggregator) AddCounts(r *flow.Record, c Counter) {
	k := a.Spec.key(r)
	out := false
	// Only TCP and UDP records pair, as in nfdump: other protocols
	// aggregate by their own key.
	pairs := r.Proto == flow.ProtoTCP || r.Proto == flow.ProtoUDP
	switch {
	case !pairs || a.Bidir == Unidirectional:
	case a.Bidir == PairedGuess && serverFirst(k.SrcPort, k.DstPort):
		k, out = k.reverse(), true
	default:
		if a.find(k) == nil && a.find(k.reverse()) != nil {
			k, out = k.reverse(), true
		}
	}
	g := a.entry(k)
	keep := a.Spec.Records || a.Bidir != Unidirectional
	if g.Flows == 0 {
		g.firstOut = out
		if keep {
			keepFirst(&g.rec, r, out)
		}
	}
	g.Flows += c.Flows
	if out {
		g.Out.Merge(c)
		g.outFlags |= r.TCPFlags
	} else {
		g.in.Merge(c)
		g.inFlags |= r.TCPFlags
	}
	if keep {
		g.rec.tcpFlags = g.TCPFlags()
	}
	if r.IsICMP() && a.Spec.DstPort {
		g.rec.icmpType, g.rec.icmpCode = r.ICMPType, r.ICMPCode
	}
}

// keepFirst copies into an aggregated record the fields nfdump keeps of
// its group's first record (its CSV and raw outputs show them): TOS,
// interfaces, AS numbers, masks, direction, VLANs, observation domain,
// router and next hop. A record turned around (-B) gives its interfaces
// turned too, as nfdump's do.
func keepFirst(g *aggRec, r *flow.Record, turned bool) {
	g.tos, g.inIf, g.outIf = r.TOS, r.InIf, r.OutIf
	if turned {
		g.inIf, g.outIf = r.OutIf, r.InIf
	}
	g.srcAS, g.dstAS, g.srcMask, g.dstMask = r.SrcAS, r.DstAS, r.SrcMask, r.DstMask
	g.dir, g.vlan, g.innerVLAN = r.Direction, r.VLAN, r.InnerVLAN
	g.domain, g.exporter, g.nextHop = r.ObservationDomain, r.Exporter, r.NextHop
}

// serverFirst reports whether a record from port src to port dst looks
// like the server's answer, nfdump's guess for -B: the source is in a
// lower port range than the destination, the ranges split at 1024 (well
// known), 32768 and 49152 (ephemeral ports on Linux and by IANA).
func serverFirst(src, dst uint16) bool {
	for _, limit := range []uint16{1024, 32768, 49152} {
		if src < limit && dst >= limit {
			return true
		}
	}
	return false
}

// Len is the number of aggregated records.
func (a *Aggregator) Len() int { return a.n }

// Records returns the aggregated records as rows, in the order their keys
// were first seen.
func (a *Aggregator) Records() []Row {
	rows := make([]Row, a.n)
	for i := range rows {
		a.at(i).row(&rows[i])
	}
	return rows
}

// Each calls fn with each aggregated record as a row, in the order their
// keys were first seen, without building them all (the row is valid
// during the call); an error of fn ends it and is returned.
func (a *Aggregator) Each(fn func(*Row) error) error {
	var w Row
	for i := range a.n {
		w = Row{}
		a.at(i).row(&w)
		if err := fn(&w); err != nil {
			return err
		}
	}
	return nil
}

// row sets the zero row w to the aggregated record.
func (g *Agg) row(w *Row) {
	c := g.Counter()
	g.rec.record(&w.Record)
	w.Packets, w.Octets = g.in.Packets, g.in.Bytes
	w.Start, w.End = c.FirstSeen(), c.LastSeen()
	w.Flows, w.OutPackets, w.OutBytes = g.Flows, g.Out.Packets, g.Out.Bytes
}

// Top returns the n largest aggregated records by o (all for n <= 0);
// ties keep the order of first appearance.
func (a *Aggregator) Top(o Order, n int) []Row {
	rows := a.Records()
	sortRows(rows, o)
	return Page(rows, 0, n)
}

// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/service"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Element is what a statistic counts by (nfdump's -s names).
type Element uint8

// Elements.
const (
	ElemSrcIP Element = iota
	ElemDstIP
	ElemIP // source or destination
	ElemSrcPort
	ElemDstPort
	ElemPort
	ElemProto
	ElemFlags
	ElemTOS
	ElemInIf
	ElemOutIf
	ElemIf
	ElemVLAN
	ElemExporter
	ElemDir
	ElemRecord // aggregated records (see Aggregator)
	ElemIdent  // the ident of the records' file (Value.Str)
	ElemSrcAS
	ElemDstAS
	ElemAS      // source and destination AS, each counted (as nfdump does, equal or not)
	ElemNextHop // the next hop address
	// ElemService is the record's service (collector/service.Of): the
	// protocol in the upper 16 bits of Value.Num, the port in the lower.
	ElemService
	// ElemSrcNet and ElemDstNet are the address cut to the record's own
	// mask (nfdump's src_net, dst_net), as text in Value.Str.
	ElemSrcNet
	ElemDstNet
	// The local socket's cgroup (flow.Record.Cgroup) and the names its
	// path shows (flow.ParseCgroup), in Value.Str: "" for records
	// without one (forwarded traffic, other exporters).
	ElemUnit
	ElemContainer
	ElemPod
	ElemCgroup
)

var elemNames = []struct {
	name  string
	e     Element
	title string
}{
	{"srcip", ElemSrcIP, "Src IP Addr"},
	{"dstip", ElemDstIP, "Dst IP Addr"},
	{"ip", ElemIP, "IP Addr"},
	{"srcport", ElemSrcPort, "Src Port"},
	{"dstport", ElemDstPort, "Dst Port"},
	{"port", ElemPort, "Port"},
	{"proto", ElemProto, "Protocol"},
	{"flags", ElemFlags, "TCP flags"},
	{"tos", ElemTOS, "Tos"},
	{"srctos", ElemTOS, "Tos"},
	{"inif", ElemInIf, "Input If"},
	{"outif", ElemOutIf, "Output If"},
	{"if", ElemIf, "In/Out If"},
	{"vlan", ElemVLAN, "Vlan"},
	{"srcvlan", ElemVLAN, "Vlan"},
	{"exporter", ElemExporter, "Exporter"},
	{"router", ElemExporter, "Exporter"},
	{"dir", ElemDir, "Direction"},
	{"record", ElemRecord, "flows"},
	{"ident", ElemIdent, "Ident"},
	{"srcas", ElemSrcAS, "Src AS"},
	{"dstas", ElemDstAS, "Dst AS"},
	{"as", ElemAS, "AS"},
	{"nhip", ElemNextHop, "Nexthop IP"},
	{"service", ElemService, "Service"},
	{"srcnet", ElemSrcNet, "Src Net"},
	{"dstnet", ElemDstNet, "Dst Net"},
	{"unit", ElemUnit, "Unit"},
	{"container", ElemContainer, "Container"},
	{"pod", ElemPod, "Pod"},
	{"cgroup", ElemCgroup, "Cgroup"},
}

// Name returns the element's -s name.
func (e Element) Name() string {
	for _, n := range elemNames {
		if n.e == e {
			return n.name
		}
	}
	return "unknown"
}

// Title is the column title nfdump prints for the element.
func (e Element) Title() string {
	for _, n := range elemNames {
		if n.e == e {
			return n.title
		}
	}
	return "?"
}

// Fields returns the record fields Stat.Add reads for the element (with
// the counters').
func (e Element) Fields() flowfile.Fields {
	const dstPort = flowfile.FieldDstPort | flowfile.FieldProto | flowfile.FieldICMP
	f := map[Element]flowfile.Fields{
		ElemSrcIP: flowfile.FieldSrc, ElemDstIP: flowfile.FieldDst, ElemIP: flowfile.FieldSrc | flowfile.FieldDst,
		ElemSrcPort: flowfile.FieldSrcPort, ElemDstPort: dstPort, ElemPort: flowfile.FieldSrcPort | dstPort,
		ElemProto: flowfile.FieldProto, ElemFlags: flowfile.FieldTCPFlags, ElemTOS: flowfile.FieldTOS,
		ElemInIf: flowfile.FieldInIf, ElemOutIf: flowfile.FieldOutIf, ElemIf: flowfile.FieldInIf | flowfile.FieldOutIf,
		ElemVLAN: flowfile.FieldVLAN, ElemExporter: flowfile.FieldExporter, ElemDir: flowfile.FieldDirection,
		ElemSrcAS: flowfile.FieldAS, ElemDstAS: flowfile.FieldAS, ElemAS: flowfile.FieldAS, ElemNextHop: flowfile.FieldNextHop,
		ElemService: flowfile.FieldProto | flowfile.FieldSrcPort | flowfile.FieldDstPort,
		ElemSrcNet:  flowfile.FieldSrc | flowfile.FieldMask, ElemDstNet: flowfile.FieldDst | flowfile.FieldMask,
		ElemUnit: flowfile.FieldCgroup, ElemContainer: flowfile.FieldCgroup, ElemPod: flowfile.FieldCgroup,
		ElemCgroup: flowfile.FieldCgroup,
	}[e]
	if e == ElemRecord {
		f = flowfile.AllFields
	}
	return f | CounterFields
}

// Format prints a value of the element as nfdump does: addresses ("local"
// for none, as records without an exporter have), TCP flags as letters,
// directions by name, numbers in decimal.
func (e Element) Format(v Value) string {
	switch {
	case e == ElemNextHop && !v.Addr.IsValid():
		return "0.0.0.0"
	case e.IsAddr():
		if !v.Addr.IsValid() {
			return "local"
		}
		return v.Addr.String()
	case e == ElemFlags:
		return flow.TCPFlagsString(uint16(v.Num))
	case e == ElemDir:
		return flow.Direction(v.Num).String()
	case e == ElemIdent || e == ElemSrcNet || e == ElemDstNet:
		return v.Str
	case e.IsCgroup():
		if v.Str == "" {
			return "-"
		}
		return v.Str
	case e == ElemService:
		return service.Text(uint8(v.Num>>16), uint16(v.Num))
	}
	return strconv.FormatUint(uint64(v.Num), 10)
}

// IsCgroup reports whether the element's values come from the local
// socket's cgroup.
func (e Element) IsCgroup() bool { return e >= ElemUnit && e <= ElemCgroup }

// IsInterface reports whether the element's values are interface indexes.
func (e Element) IsInterface() bool { return e == ElemInIf || e == ElemOutIf || e == ElemIf }

// IsAddr reports whether the element's values are addresses.
func (e Element) IsAddr() bool {
	return e == ElemSrcIP || e == ElemDstIP || e == ElemIP || e == ElemExporter || e == ElemNextHop
}

// StatSpec is one -s TYPE[/ORDER[/ORDER...]].
type StatSpec struct {
	Element Element
	Orders  []Order // at least one; default flows
}

// ParseStat parses "srcip", "dstport/bytes", "ip/flows/bytes".
func ParseStat(s string) (StatSpec, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	var spec StatSpec
	found := false
	for _, n := range elemNames {
		if n.name == parts[0] {
			spec.Element, found = n.e, true
			break
		}
	}
	if !found {
		var names []string
		for _, n := range elemNames {
			names = append(names, n.name)
		}
		return StatSpec{}, fmt.Errorf("statistic %q: unknown element %q (want %s)", s, parts[0], strings.Join(names, ", "))
	}
	for _, p := range parts[1:] {
		o, ok := ParseOrder(p)
		if !ok || o > ByBPP {
			return StatSpec{}, fmt.Errorf("statistic %q: unknown order %q (want flows, packets, bytes, pps, bps or bpp)", s, p)
		}
		spec.Orders = append(spec.Orders, o)
	}
	if len(spec.Orders) == 0 {
		spec.Orders = []Order{ByFlows}
	}
	return spec, nil
}

// Value is one element value: an address, a number or (idents) a string.
type Value struct {
	Addr netip.Addr
	Num  uint32
	Str  string
}

func (v Value) compare(o Value) int {
	if c := v.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Num, o.Num); c != 0 {
		return c
	}
	return cmp.Compare(v.Str, o.Str)
}

// Stat counts records by one element. Numbers below 65536 (ports,
// protocols, flags, ...) index a dense table; addresses and larger numbers
// go through a map to an index. Counters live in chunks (counters).
type Stat struct {
	Spec  StatSpec
	Total Counter  // over every record added
	cs    counters // the index holds each one's value
	index *valueIndex
	// AddBlock's map of a block's dictionary to counters.
	slots     []int32
	slotsDict uint64
}

// NewStat returns an empty statistic. ElemRecord is not counted here.
func NewStat(spec StatSpec) *Stat {
	s := &Stat{Spec: spec, index: newValueIndex(spec.Element.IsAddr())}
	s.index.strs = spec.Element == ElemIdent || spec.Element == ElemSrcNet || spec.Element == ElemDstNet || spec.Element.IsCgroup()
	return s
}

func (s *Stat) addAddr(a netip.Addr, r *flow.Record) {
	i, added := s.index.addr(a)
	if added {
		s.push()
	}
	s.cs.at(i).Add(r)
}

func (s *Stat) addNum(n uint32, r *flow.Record) {
	i, added := s.index.num(n)
	if added {
		s.push()
	}
	s.cs.at(i).Add(r)
}

func (s *Stat) addStr(str string, r *flow.Record) {
	i, added := s.index.str(str)
	if added {
		s.push()
	}
	s.cs.at(i).Add(r)
}

// push adds a counter for a new value (the index keeps the value).
func (s *Stat) push() { s.cs.push() }

// Add counts r.
func (s *Stat) Add(r *flow.Record) {
	s.Total.Add(r)
	switch s.Spec.Element {
	case ElemSrcIP:
		s.addAddr(r.Src, r)
	case ElemDstIP:
		s.addAddr(r.Dst, r)
	case ElemIP:
		s.addAddr(r.Src, r)
		if r.Dst != r.Src {
			s.addAddr(r.Dst, r)
		}
	case ElemSrcPort:
		s.addNum(uint32(r.SrcPort), r)
	case ElemDstPort:
		s.addNum(uint32(r.NfDstPort()), r)
	case ElemPort:
		sp, dp := r.SrcPort, r.NfDstPort()
		s.addNum(uint32(sp), r)
		if dp != sp {
			s.addNum(uint32(dp), r)
		}
	case ElemProto:
		s.addNum(uint32(r.Proto), r)
	case ElemFlags:
		s.addNum(uint32(r.TCPFlags), r)
	case ElemTOS:
		s.addNum(uint32(r.TOS), r)
	case ElemInIf:
		s.addNum(r.InIf, r)
	case ElemOutIf:
		s.addNum(r.OutIf, r)
	case ElemIf:
		s.addNum(r.InIf, r)
		if r.OutIf != r.InIf {
			s.addNum(r.OutIf, r)
		}
	case ElemVLAN:
		s.addNum(uint32(r.VLAN), r)
	case ElemExporter:
		s.addAddr(r.Exporter, r)
	case ElemDir:
		s.addNum(uint32(r.Direction), r)
	case ElemIdent:
		s.addStr(r.Ident, r)
	case ElemSrcAS:
		s.addNum(r.SrcAS, r)
	case ElemDstAS:
		s.addNum(r.DstAS, r)
	case ElemAS:
		s.addNum(r.SrcAS, r)
		s.addNum(r.DstAS, r)
	case ElemNextHop:
		s.addAddr(r.NextHop, r)
	case ElemService:
		s.addNum(uint32(r.Proto)<<16|uint32(service.Of(r)), r)
	case ElemSrcNet:
		s.addStr(netOf(r.Src, r.SrcMask), r)
	case ElemDstNet:
		s.addStr(netOf(r.Dst, r.DstMask), r)
	case ElemCgroup:
		s.addStr(r.Cgroup, r)
	case ElemUnit, ElemContainer, ElemPod:
		s.addStr(cgroupValue(s.Spec.Element, r), r)
	}
}

// cgroupValue returns r's value of a cgroup element: its cgroup path or
// the unit, container id or pod UID the path shows ("" for none).
func cgroupValue(e Element, r *flow.Record) string {
	if r.Cgroup == "" || e == ElemCgroup {
		return r.Cgroup
	}
	switch n := flow.ParseCgroup(r.Cgroup); e {
	case ElemUnit:
		return n.Unit
	case ElemContainer:
		return n.Container
	case ElemPod:
		return n.Pod
	}
	return ""
}

// addBlock counts the records sel of b, whose times spans holds (one per
// record of sel), into the counters but not into Total: the caller counts
// the total once for all its statistics. Addresses are looked up once per
// block and dictionary entry (when b carries its dictionary indexes), not
// once per record.
func (s *Stat) addBlock(b *flowfile.Block, sel []int32, spans []recSpan) {
	recs := b.Records
	if recs == nil {
		s.addColumns(b, sel)
		return
	}
	var idx []uint32
	switch s.Spec.Element {
	case ElemSrcIP:
		idx = b.SrcAddr
	case ElemDstIP:
		idx = b.DstAddr
	case ElemIP:
		if b.SrcAddr != nil && b.DstAddr != nil {
			slots := s.blockSlots(b)
			for j, k := range sel {
				r := &recs[k]
				s.cs.at(s.slot(slots, b.Addrs, b.SrcAddr[k])).addSpan(r, &spans[j])
				if r.Dst != r.Src {
					s.cs.at(s.slot(slots, b.Addrs, b.DstAddr[k])).addSpan(r, &spans[j])
				}
			}
			return
		}
	case ElemSrcPort, ElemDstPort, ElemProto, ElemFlags, ElemTOS, ElemInIf, ElemOutIf, ElemVLAN, ElemDir:
		for j, k := range sel {
			r := &recs[k]
			v := s.numValue(r)
			i, added := s.index.num(v)
			if added {
				s.push()
			}
			s.cs.at(i).addSpan(r, &spans[j])
		}
		return
	}
	if idx == nil {
		total := s.Total
		for _, k := range sel {
			s.Add(&recs[k])
		}
		s.Total = total
		return
	}
	slots := s.blockSlots(b)
	for j, k := range sel {
		s.cs.at(s.slot(slots, b.Addrs, idx[k])).addSpan(&recs[k], &spans[j])
	}
}

// counted reports whether Stat counts the element on columns
// (addColumns).
func (e Element) counted() bool {
	switch e {
	case ElemSrcIP, ElemDstIP, ElemIP, ElemSrcPort, ElemDstPort, ElemPort, ElemProto:
		return true
	}
	return false
}

// addColumns is addBlock for a piece of columns (flowfile.Block.Records
// nil) with the fields of the element and the counters.
func (s *Stat) addColumns(b *flowfile.Block, sel []int32) {
	cv := colValuesOf(b)
	switch e := s.Spec.Element; e {
	case ElemSrcIP, ElemDstIP, ElemIP:
		slots := s.blockSlots(b)
		idx := b.SrcAddr
		if e == ElemDstIP {
			idx = b.DstAddr
		}
		for _, k := range sel {
			cv.add(s.cs.at(s.slot(slots, b.Addrs, idx[k])), k)
		}
		if e == ElemIP {
			src := b.SrcAddr
			for _, k := range sel {
				if d := b.DstAddr[k]; d != src[k] && b.Addrs[d] != b.Addrs[src[k]] {
					cv.add(s.cs.at(s.slot(slots, b.Addrs, d)), k)
				}
			}
		}
	case ElemSrcPort, ElemDstPort, ElemPort, ElemProto:
		for _, k := range sel {
			var v, v2 uint32
			two := false
			switch e {
			case ElemSrcPort:
				v = uint32(b.SrcPort[k])
			case ElemDstPort:
				v = uint32(nfDstPort(b, int(k)))
			case ElemPort:
				v, v2 = uint32(b.SrcPort[k]), uint32(nfDstPort(b, int(k)))
				two = v2 != v
			case ElemProto:
				v = uint32(b.Proto[k])
			}
			cv.add(s.numCounter(v), k)
			if two {
				cv.add(s.numCounter(v2), k)
			}
		}
	}
}

// numCounter returns the counter of the number v.
func (s *Stat) numCounter(v uint32) *Counter {
	i, added := s.index.num(v)
	if added {
		s.push()
	}
	return s.cs.at(i)
}

// nfDstPort is flow.Record.NfDstPort of record k of a piece of columns.
func nfDstPort(b *flowfile.Block, k int) uint16 {
	p := b.DstPort[k]
	if p == 0 && (b.Proto[k] == flow.ProtoICMP || b.Proto[k] == flow.ProtoICMPv6) {
		return b.ICMP[k]
	}
	return p
}

// numValue is r's value for a statistic by a number with one value per
// record.
func (s *Stat) numValue(r *flow.Record) uint32 {
	switch s.Spec.Element {
	case ElemSrcPort:
		return uint32(r.SrcPort)
	case ElemDstPort:
		return uint32(r.NfDstPort())
	case ElemProto:
		return uint32(r.Proto)
	case ElemFlags:
		return uint32(r.TCPFlags)
	case ElemTOS:
		return uint32(r.TOS)
	case ElemInIf:
		return r.InIf
	case ElemOutIf:
		return r.OutIf
	case ElemVLAN:
		return uint32(r.VLAN)
	case ElemDir:
		return uint32(r.Direction)
	}
	return 0
}

// blockSlots returns the map from b's dictionary index to 1 + counter
// index (0: not looked up yet), kept over the pieces of one block.
func (s *Stat) blockSlots(b *flowfile.Block) []int32 {
	n := len(b.Addrs)
	if b.Dict == s.slotsDict && len(s.slots) == n {
		return s.slots
	}
	if cap(s.slots) < n {
		s.slots = make([]int32, n)
	}
	s.slots, s.slotsDict = s.slots[:n], b.Dict
	clear(s.slots)
	return s.slots
}

// slot returns the counter index of dictionary entry d, looking the
// address up the first time.
func (s *Stat) slot(slots []int32, addrs []netip.Addr, d uint32) int32 {
	if i := slots[d]; i != 0 {
		return i - 1
	}
	a := addrs[d]
	i, added := s.index.addr(a)
	if added {
		s.push()
	}
	slots[d] = i + 1
	return i
}

// Merge adds o (a statistic of the same spec).
func (s *Stat) Merge(o *Stat) {
	s.Total.Merge(o.Total)
	o.index.each(func(v Value, k int32) {
		i, added := s.index.value(v)
		if added {
			s.push()
		}
		s.cs.at(i).Merge(*o.cs.at(k))
	})
}

// Len is the number of distinct values.
func (s *Stat) Len() int { return s.cs.len() }

// Entry is one row of a statistic.
type Entry struct {
	Value Value
	Counter
}

// Top returns the n largest entries by o (all for n <= 0), ties broken by
// value. It walks the index, which holds each counter's value: the values
// of a whole statistic side by side (48 bytes each, 3 MiB for every port)
// were most of the fresh memory of a statistic by port, and each fresh
// page is a fault.
func (s *Stat) Top(o Order, n int) []Entry {
	if n <= 0 || s.cs.len() <= 2*n {
		out := make([]Entry, 0, s.cs.len())
		s.index.each(func(v Value, i int32) { out = append(out, Entry{v, *s.cs.at(i)}) })
		sortEntries(out, o)
		if n > 0 && len(out) > n {
			out = out[:n]
		}
		return out
	}
	// The n first in a heap whose root ranks last among them: an entry
	// that ranks after the root is not among the n first. The ranking is
	// total (ties are broken by value), so the order of the walk does not
	// change which entries are kept.
	h := make([]Entry, 0, n)
	down := func(k int) {
		for {
			c := 2*k + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && rankEntries(h[c+1], h[c], o) > 0 {
				c++
			}
			if rankEntries(h[c], h[k], o) <= 0 {
				return
			}
			h[k], h[c] = h[c], h[k]
			k = c
		}
	}
	s.index.each(func(v Value, i int32) {
		e := Entry{v, *s.cs.at(i)}
		switch {
		case len(h) < n:
			h = append(h, e)
			for k := len(h) - 1; k > 0 && rankEntries(h[k], h[(k-1)/2], o) > 0; k = (k - 1) / 2 {
				h[k], h[(k-1)/2] = h[(k-1)/2], h[k]
			}
		case rankEntries(e, h[0], o) < 0:
			h[0] = e
			down(0)
		}
	})
	sortEntries(h, o)
	return h
}

// rankEntries orders entries as statistics list them: larger values by o
// first, ties by value.
func rankEntries(a, b Entry, o Order) int {
	if c := cmp.Compare(b.value(o), a.value(o)); c != 0 {
		return c
	}
	return a.Value.compare(b.Value)
}

func sortEntries(es []Entry, o Order) {
	slices.SortFunc(es, func(a, b Entry) int { return rankEntries(a, b, o) })
}

// netOf is an address cut to a mask, as a network ("198.18.0.0/16");
// a mask longer than the address keeps it whole.
func netOf(a netip.Addr, bits uint8) string {
	if !a.IsValid() {
		return "local"
	}
	p, err := a.Prefix(min(int(bits), a.BitLen()))
	if err != nil {
		return a.String()
	}
	return p.String()
}

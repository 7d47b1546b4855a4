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
	case e.IsAddr():
		if !v.Addr.IsValid() {
			return "local"
		}
		return v.Addr.String()
	case e == ElemFlags:
		return flow.TCPFlagsString(uint16(v.Num))
	case e == ElemDir:
		return flow.Direction(v.Num).String()
	}
	return strconv.FormatUint(uint64(v.Num), 10)
}

// IsAddr reports whether the element's values are addresses.
func (e Element) IsAddr() bool {
	return e == ElemSrcIP || e == ElemDstIP || e == ElemIP || e == ElemExporter
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

// Value is one element value: an address or a number.
type Value struct {
	Addr netip.Addr
	Num  uint32
}

func (v Value) compare(o Value) int {
	if c := v.Addr.Compare(o.Addr); c != 0 {
		return c
	}
	return cmp.Compare(v.Num, o.Num)
}

// Stat counts records by one element. Numbers below 65536 (ports,
// protocols, flags, ...) index a dense table; addresses and larger numbers
// go through a map to an index. Counters live in one slice.
type Stat struct {
	Spec  StatSpec
	Total Counter // over every record added
	cs    []Counter
	vals  []Value
	index *valueIndex
}

// NewStat returns an empty statistic. ElemRecord is not counted here.
func NewStat(spec StatSpec) *Stat {
	return &Stat{Spec: spec, index: newValueIndex(spec.Element.IsAddr())}
}

func (s *Stat) addAddr(a netip.Addr, r *flow.Record) {
	i, added := s.index.addr(a)
	if added {
		s.cs = append(s.cs, Counter{})
		s.vals = append(s.vals, Value{Addr: a})
	}
	s.cs[i].Add(r)
}

func (s *Stat) addNum(n uint32, r *flow.Record) {
	i, added := s.index.num(n)
	if added {
		s.cs = append(s.cs, Counter{})
		s.vals = append(s.vals, Value{Num: n})
	}
	s.cs[i].Add(r)
}

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
	}
}

// Merge adds o (a statistic of the same spec).
func (s *Stat) Merge(o *Stat) {
	s.Total.Merge(o.Total)
	for k, v := range o.vals {
		i, added := s.index.value(v)
		if added {
			s.cs = append(s.cs, Counter{})
			s.vals = append(s.vals, v)
		}
		s.cs[i].Merge(o.cs[k])
	}
}

// Len is the number of distinct values.
func (s *Stat) Len() int { return len(s.cs) }

// Entry is one row of a statistic.
type Entry struct {
	Value Value
	Counter
}

// Top returns the n largest entries by o (all for n <= 0), ties broken by
// value.
func (s *Stat) Top(o Order, n int) []Entry {
	out := make([]Entry, 0, len(s.cs))
	for i, c := range s.cs {
		out = append(out, Entry{s.vals[i], c})
	}
	sortEntries(out, o)
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func sortEntries(es []Entry, o Order) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := cmp.Compare(b.value(o), a.value(o)); c != 0 {
			return c
		}
		return a.Value.compare(b.Value)
	})
}

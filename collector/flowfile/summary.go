// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// maxSummaryExporters bounds the exporters a summary lists.
const maxSummaryExporters = 1 << 16

// Counters are flow, packet and octet totals.
type Counters struct {
	Flows, Packets, Octets uint64
}

func (c *Counters) add(r *flow.Record) {
	c.Flows++
	c.Packets += r.Packets
	c.Octets += r.Octets
}

func (c *Counters) merge(o Counters) {
	c.Flows += o.Flows
	c.Packets += o.Packets
	c.Octets += o.Octets
}

// ExporterStats are the totals of one exporter (address and observation
// domain) within a file.
type ExporterStats struct {
	Addr              netip.Addr // invalid for records without an exporter
	ObservationDomain uint32
	Counters
	SequenceFailures uint64
}

// Summary is a file's closing summary: totals over the records in its
// readable blocks.
type Summary struct {
	Blocks              uint64
	Total               Counters
	TCP, UDP, ICMP      Counters // ICMP counts ICMP and ICMPv6
	Other               Counters
	FirstSeen, LastSeen time.Time // earliest Start, latest End; zero if none
	SequenceFailures    uint64
	Exporters           []ExporterStats // sorted by address, then domain
}

type exporterKey struct {
	addr   netip.Addr
	domain uint32
}

// Summarizer accumulates a Summary from records and from other summaries
// (a file's, when it was closed cleanly). The zero value is not ready: use
// NewSummarizer.
type Summarizer struct {
	s       Summary
	exp     map[exporterKey]*ExporterStats
	lastKey exporterKey
	last    *ExporterStats
}

// NewSummarizer returns an empty summarizer.
func NewSummarizer() *Summarizer {
	return &Summarizer{exp: make(map[exporterKey]*ExporterStats)}
}

func (z *Summarizer) exporter(k exporterKey) *ExporterStats {
	if z.last != nil && z.lastKey == k {
		return z.last
	}
	e := z.exp[k]
	if e == nil {
		e = &ExporterStats{Addr: k.addr, ObservationDomain: k.domain}
		z.exp[k] = e
	}
	z.lastKey, z.last = k, e
	return e
}

// Add counts one record.
func (z *Summarizer) Add(r *flow.Record) {
	s := &z.s
	s.Total.add(r)
	switch r.Proto {
	case flow.ProtoTCP:
		s.TCP.add(r)
	case flow.ProtoUDP:
		s.UDP.add(r)
	case flow.ProtoICMP, flow.ProtoICMPv6:
		s.ICMP.add(r)
	default:
		s.Other.add(r)
	}
	if !r.Start.IsZero() && (s.FirstSeen.IsZero() || r.Start.Before(s.FirstSeen)) {
		s.FirstSeen = r.Start
	}
	if !r.End.IsZero() && (s.LastSeen.IsZero() || r.End.After(s.LastSeen)) {
		s.LastSeen = r.End
	}
	z.exporter(exporterKey{r.Exporter, r.ObservationDomain}).add(r)
}

func (z *Summarizer) sequenceFailures(addr netip.Addr, domain uint32, n uint64) {
	z.s.SequenceFailures += n
	z.exporter(exporterKey{addr, domain}).SequenceFailures += n
}

// Merge adds what o counted.
func (z *Summarizer) Merge(o *Summarizer) {
	z.mergeTotals(&o.s)
	for k, e := range o.exp {
		d := z.exporter(k)
		d.Counters.merge(e.Counters)
		d.SequenceFailures += e.SequenceFailures
	}
}

// AddSummary adds a summary (a file's stored one).
func (z *Summarizer) AddSummary(o Summary) {
	z.mergeTotals(&o)
	for _, e := range o.Exporters {
		d := z.exporter(exporterKey{e.Addr, e.ObservationDomain})
		d.Counters.merge(e.Counters)
		d.SequenceFailures += e.SequenceFailures
	}
}

func (z *Summarizer) mergeTotals(o *Summary) {
	s := &z.s
	s.Blocks += o.Blocks
	s.Total.merge(o.Total)
	s.TCP.merge(o.TCP)
	s.UDP.merge(o.UDP)
	s.ICMP.merge(o.ICMP)
	s.Other.merge(o.Other)
	if !o.FirstSeen.IsZero() && (s.FirstSeen.IsZero() || o.FirstSeen.Before(s.FirstSeen)) {
		s.FirstSeen = o.FirstSeen
	}
	if !o.LastSeen.IsZero() && (s.LastSeen.IsZero() || o.LastSeen.After(s.LastSeen)) {
		s.LastSeen = o.LastSeen
	}
	s.SequenceFailures += o.SequenceFailures
}

func (z *Summarizer) reset() {
	z.s = Summary{}
	clear(z.exp)
	z.last = nil
}

// Summary returns what was counted, the exporters sorted.
func (z *Summarizer) Summary() Summary {
	s := z.s
	s.Exporters = make([]ExporterStats, 0, len(z.exp))
	for _, e := range z.exp {
		s.Exporters = append(s.Exporters, *e)
	}
	slices.SortFunc(s.Exporters, func(a, b ExporterStats) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.ObservationDomain, b.ObservationDomain)
	})
	return s
}

func appendCounters(dst []byte, c Counters) []byte {
	dst = binary.AppendUvarint(dst, c.Flows)
	dst = binary.AppendUvarint(dst, c.Packets)
	return binary.AppendUvarint(dst, c.Octets)
}

func (c *cursor) counters() Counters {
	return Counters{Flows: c.uvarint(), Packets: c.uvarint(), Octets: c.uvarint()}
}

// appendSummary encodes a summary; version 2 adds the index of auxiliary
// sections.
func appendSummary(dst []byte, s Summary, version uint16, aux []auxRef) []byte {
	dst = binary.AppendUvarint(dst, s.Blocks)
	for _, c := range []Counters{s.Total, s.TCP, s.UDP, s.ICMP, s.Other} {
		dst = appendCounters(dst, c)
	}
	dst = appendTime(dst, s.FirstSeen)
	dst = appendTime(dst, s.LastSeen)
	dst = binary.AppendUvarint(dst, s.SequenceFailures)
	n := min(len(s.Exporters), maxSummaryExporters)
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, e := range s.Exporters[:n] {
		dst = appendAddr(dst, e.Addr)
		dst = binary.AppendUvarint(dst, uint64(e.ObservationDomain))
		dst = appendCounters(dst, e.Counters)
		dst = binary.AppendUvarint(dst, e.SequenceFailures)
	}
	if version >= 2 {
		dst = appendAuxIndex(dst, aux)
	}
	return dst
}

func parseSummary(b []byte, version uint16) (Summary, []auxRef, error) {
	c := cursor{b: b}
	var s Summary
	s.Blocks = c.uvarint()
	s.Total = c.counters()
	s.TCP = c.counters()
	s.UDP = c.counters()
	s.ICMP = c.counters()
	s.Other = c.counters()
	s.FirstSeen = c.time()
	s.LastSeen = c.time()
	s.SequenceFailures = c.uvarint()
	n := c.uvarint()
	// An exporter entry takes at least 6 bytes.
	if c.bad || n > maxSummaryExporters || n > uint64(len(c.b))/6 {
		return Summary{}, nil, fmt.Errorf("%w: malformed summary", ErrCorrupt)
	}
	s.Exporters = make([]ExporterStats, n)
	for i := range s.Exporters {
		e := &s.Exporters[i]
		e.Addr = c.addr()
		e.ObservationDomain = c.u32()
		e.Counters = c.counters()
		e.SequenceFailures = c.uvarint()
	}
	var aux []auxRef
	if version >= 2 {
		aux = c.auxIndex()
	}
	if c.bad || len(c.b) != 0 {
		return Summary{}, nil, fmt.Errorf("%w: malformed summary", ErrCorrupt)
	}
	return s, aux, nil
}

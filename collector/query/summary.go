// SPDX-License-Identifier: Apache-2.0

package query

import (
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Summary is what -I prints: totals per protocol class over the selected
// records, their first start and last end.
type Summary struct {
	Total, TCP, UDP, ICMP, Other Counter
	// SequenceFailures is known only from the stored summaries of files
	// read whole (no filter, window or limit).
	SequenceFailures uint64
}

// Add counts r.
func (s *Summary) Add(r *flow.Record) {
	s.Total.Add(r)
	switch r.Proto {
	case flow.ProtoTCP:
		s.TCP.Add(r)
	case flow.ProtoUDP:
		s.UDP.Add(r)
	case flow.ProtoICMP, flow.ProtoICMPv6:
		s.ICMP.Add(r)
	default:
		s.Other.Add(r)
	}
}

// Merge adds o's counts.
func (s *Summary) Merge(o *Summary) {
	s.Total.Merge(o.Total)
	s.TCP.Merge(o.TCP)
	s.UDP.Merge(o.UDP)
	s.ICMP.Merge(o.ICMP)
	s.Other.Merge(o.Other)
	s.SequenceFailures += o.SequenceFailures
}

// SummaryFields are the record fields Summary.Add reads.
const SummaryFields = CounterFields | flowfile.FieldProto

// AddStored adds a file's stored summary (for files read whole).
func (s *Summary) AddStored(f flowfile.Summary) {
	conv := func(c flowfile.Counters) Counter {
		return Counter{Flows: c.Flows, Packets: c.Packets, Bytes: c.Octets}
	}
	span := Counter{}
	if !f.FirstSeen.IsZero() {
		span.First = f.FirstSeen.UnixNano()
	}
	if !f.LastSeen.IsZero() {
		span.Last = f.LastSeen.UnixNano()
	}
	t := conv(f.Total)
	t.First, t.Last = span.First, span.Last
	s.Total.Merge(t)
	s.TCP.Merge(conv(f.TCP))
	s.UDP.Merge(conv(f.UDP))
	s.ICMP.Merge(conv(f.ICMP))
	s.Other.Merge(conv(f.Other))
	s.SequenceFailures += f.SequenceFailures
}

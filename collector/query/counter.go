// SPDX-License-Identifier: Apache-2.0

package query

import (
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// CounterFields are the record fields Counter.Add reads.
const CounterFields = flowfile.FieldPackets | flowfile.FieldOctets | flowfile.FieldTimes

// Counter accumulates flows, packets and bytes with the first start and
// last end seen (Unix nanoseconds, 0 for none).
type Counter struct {
	Flows, Packets, Bytes uint64
	First, Last           int64
}

// Add counts one record.
func (c *Counter) Add(r *flow.Record) {
	c.Flows++
	c.Packets += r.Packets
	c.Bytes += r.Octets
	c.span(r)
}

func (c *Counter) span(r *flow.Record) {
	if !r.Start.IsZero() {
		if s := r.Start.UnixNano(); c.First == 0 || s < c.First {
			c.First = s
		}
	}
	if !r.End.IsZero() {
		if e := r.End.UnixNano(); e > c.Last {
			c.Last = e
		}
	}
}

// recSpan is a record's times as Counter keeps them, worked out once for
// all the counters the record goes into.
type recSpan struct {
	first, last      int64 // Unix ns
	hasStart, hasEnd bool
}

func spanOf(r *flow.Record) recSpan {
	var sp recSpan
	if !r.Start.IsZero() {
		sp.first, sp.hasStart = r.Start.UnixNano(), true
	}
	if !r.End.IsZero() {
		sp.last, sp.hasEnd = r.End.UnixNano(), true
	}
	return sp
}

// colValues are the columns of a piece of a block that counters read.
type colValues struct {
	packets, octets []uint64
	start, end      []int64
	times           []uint8
}

func colValuesOf(b *flowfile.Block) colValues {
	return colValues{b.Packets, b.Octets, b.Start, b.End, b.Times}
}

// add is Add for record k of the columns.
func (v *colValues) add(c *Counter, k int32) {
	c.Flows++
	c.Packets += v.packets[k]
	c.Bytes += v.octets[k]
	t := v.times[k]
	if s := v.start[k]; t&flowfile.TimeStart != 0 && (c.First == 0 || s < c.First) {
		c.First = s
	}
	if e := v.end[k]; t&flowfile.TimeEnd != 0 && e > c.Last {
		c.Last = e
	}
}

// addSpan is Add for a record whose times are sp.
func (c *Counter) addSpan(r *flow.Record, sp *recSpan) {
	c.Flows++
	c.Packets += r.Packets
	c.Bytes += r.Octets
	if sp.hasStart && (c.First == 0 || sp.first < c.First) {
		c.First = sp.first
	}
	if sp.hasEnd && sp.last > c.Last {
		c.Last = sp.last
	}
}

// Merge adds o.
func (c *Counter) Merge(o Counter) {
	c.Flows += o.Flows
	c.Packets += o.Packets
	c.Bytes += o.Bytes
	if o.First != 0 && (c.First == 0 || o.First < c.First) {
		c.First = o.First
	}
	if o.Last > c.Last {
		c.Last = o.Last
	}
}

// FirstSeen and LastSeen return the span as times (zero if unknown).
func (c *Counter) FirstSeen() time.Time { return nanoTime(c.First) }

// LastSeen returns the latest end.
func (c *Counter) LastSeen() time.Time { return nanoTime(c.Last) }

func nanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// DurationMs is Last-First in milliseconds (0 when unknown).
func (c *Counter) DurationMs() uint64 {
	if c.First == 0 || c.Last < c.First {
		return 0
	}
	return uint64((c.Last - c.First) / 1e6)
}

// Rates as nfdump prints them in statistics: per second over the span,
// 0 for a span of no length.

// PPS returns packets per second.
func (c *Counter) PPS() uint64 {
	return flow.Rate(c.Packets, c.DurationMs())
}

// BPS returns bits per second.
func (c *Counter) BPS() uint64 {
	return flow.Rate(8*c.Bytes, c.DurationMs())
}

// BPP returns bytes per packet.
func (c *Counter) BPP() uint64 {
	if c.Packets > 0 {
		return c.Bytes / c.Packets
	}
	return 0
}

// Order is what statistics and listings are sorted by.
type Order uint8

// Orders.
const (
	ByFlows Order = iota
	ByPackets
	ByBytes
	ByPPS
	ByBPS
	ByBPP
	ByStart    // tstart: listings only
	ByEnd      // tend
	ByDuration // duration
)

var orderNames = map[string]Order{
	"flows": ByFlows, "packets": ByPackets, "ipkg": ByPackets, "bytes": ByBytes, "ibyte": ByBytes,
	"pps": ByPPS, "ipps": ByPPS, "bps": ByBPS, "ibps": ByBPS, "bpp": ByBPP, "ibpp": ByBPP,
	"tstart": ByStart, "tend": ByEnd, "duration": ByDuration,
}

// ParseOrder parses an order name (nfdump's -O names).
func ParseOrder(s string) (Order, bool) {
	o, ok := orderNames[s]
	return o, ok
}

func (o Order) String() string {
	for k, v := range orderNames {
		if v == o && len(k) > 0 && k[0] != 'i' && k != "ipkg" {
			return k
		}
	}
	return "unknown"
}

// value returns the counter's value for an order (larger first).
func (c *Counter) value(o Order) uint64 {
	switch o {
	case ByFlows:
		return c.Flows
	case ByPackets:
		return c.Packets
	case ByBytes:
		return c.Bytes
	case ByPPS:
		return c.PPS()
	case ByBPS:
		return c.BPS()
	case ByBPP:
		return c.BPP()
	case ByDuration:
		return c.DurationMs()
	}
	return 0
}

// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Biflow records (RFC 5103): the reverse information elements (enterprise
// number ReversePEN) of a data record are the responder's values. The
// decoder turns such a record into two directional records, the
// initiator's and the responder's, so that what is stored and queried is
// the same as for unidirectional export. A responder without packets and
// octets gives no record.

// revState collects the reverse elements of one data record.
type revState struct {
	seen                uint8
	packets, octets     uint64
	startMs, endMs      int64
	tcpFlags            uint16
	tos, minTTL, maxTTL uint8
}

// Bits of revState.seen.
const (
	revSeenCounts = 1 << iota
	revSeenStart
	revSeenEnd
)

// apply stores the value of reverse element id; values of an unexpected
// length are ignored, as for forward elements.
func (rs *revState) apply(id uint16, v []byte) {
	u, ok := getUint(v)
	if !ok {
		return
	}
	switch id {
	case IEOctetDeltaCount:
		rs.octets = u
		rs.seen |= revSeenCounts
	case IEPacketDeltaCount:
		rs.packets = u
		rs.seen |= revSeenCounts
	case IEFlowStartMilliseconds:
		rs.startMs = int64(u)
		rs.seen |= revSeenStart
	case IEFlowEndMilliseconds:
		rs.endMs = int64(u)
		rs.seen |= revSeenEnd
	case IETCPControlBits:
		rs.tcpFlags = uint16(u)
	case IEIPClassOfService:
		rs.tos = uint8(u)
	case IEMinimumTTL:
		rs.minTTL = uint8(u)
	case IEMaximumTTL:
		rs.maxTTL = uint8(u)
	}
}

// hasReverse reports whether a template's records carry reverse
// elements (they are decoded by the generic path).
func hasReverse(fields []Field) bool {
	for _, f := range fields {
		if f.Enterprise == ReversePEN {
			return true
		}
	}
	return false
}

// appendReverse appends the responder's record of the biflow record r (the
// last of out.Records) when the record carried responder counts. r is not
// valid afterwards.
func (s *Templates) appendReverse(out *Data, r *flow.Record, rs *recState) {
	rv := &rs.rev
	if rv.seen&revSeenCounts == 0 || rv.packets == 0 && rv.octets == 0 {
		return
	}
	rr := *r
	rr.Src, rr.Dst = r.Dst, r.Src
	rr.SrcPort, rr.DstPort = r.DstPort, r.SrcPort
	rr.InIf, rr.OutIf = r.OutIf, r.InIf
	if rs.seen&seenDirection != 0 && r.Direction <= flow.Egress {
		rr.Direction = r.Direction ^ 1
	}
	if r.IsICMP() {
		if t, ok := flow.ICMPReplyType(r.Proto, r.ICMPType); ok {
			rr.ICMPType = t
		}
	}
	rr.Packets, rr.Octets = rv.packets, rv.octets
	rr.TCPFlags, rr.TOS, rr.MinTTL, rr.MaxTTL = rv.tcpFlags, rv.tos, rv.minTTL, rv.maxTTL
	if rv.seen&revSeenStart != 0 {
		rr.Start = msTime(rv.startMs)
	}
	if rv.seen&revSeenEnd != 0 {
		rr.End = msTime(rv.endMs)
	}
	out.Records = append(out.Records, rr)
	out.Reversed++
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

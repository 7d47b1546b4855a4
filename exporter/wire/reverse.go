// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Biflow records (RFC 5103): the reverse information elements (enterprise
// number ReversePEN) of a data record are the responder's values. The
// decoder turns such a record into two directional records, the
// initiator's and the responder's, so that what is stored and queried is
// the same as for unidirectional export. A responder without packets and
// octets gives no record.

// reverseScratch collects the reverse elements of the data record being
// decoded, as the forward elements of a record of their own: the
// elements mean the same, only for the other direction.
type reverseScratch struct {
	used bool
	rec  flow.Record
	rs   recState
}

// applyReverse stores the value of reverse element id.
func (s *Templates) applyReverse(id uint16, v []byte) {
	s.rev.used = true
	s.rev.rs.apply(&s.rev.rec, id, v)
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
// last of out.Records) when the record carried responder counts, and
// clears the scratch. r is not valid afterwards.
func (s *Templates) appendReverse(out *Data, r *flow.Record, ctx *Context, rs *recState, init int64) {
	if !s.rev.used {
		return
	}
	rv, rrs := &s.rev.rec, &s.rev.rs
	defer func() { s.rev = reverseScratch{} }()
	if rrs.seen&(seenOctets|seenPackets) == 0 || rv.Packets == 0 && rv.Octets == 0 {
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
	rr.Packets, rr.Octets = rv.Packets, rv.Octets
	rr.TCPFlags, rr.TOS, rr.MinTTL, rr.MaxTTL = rv.TCPFlags, rv.TOS, rv.MinTTL, rv.MaxTTL
	// The responder's times, in whichever precision they came (reverse
	// flowStartMilliseconds from kflow); without them, the initiator's.
	startBits := [5]uint32{seenStartNs, seenStartMs, seenStartSec, seenStartDelta, seenStartUp}
	endBits := [5]uint32{seenEndNs, seenEndMs, seenEndSec, seenEndDelta, seenEndUp}
	if rrs.seen&(startBits[0]|startBits[1]|startBits[2]|startBits[3]|startBits[4]) != 0 {
		rr.Start = rrs.resolveTime(ctx, init, rrs.startNs, rrs.startMs, rrs.startSec, int64(rrs.startDelta), int64(rrs.startUp), startBits)
	}
	if rrs.seen&(endBits[0]|endBits[1]|endBits[2]|endBits[3]|endBits[4]) != 0 {
		rr.End = rrs.resolveTime(ctx, init, rrs.endNs, rrs.endMs, rrs.endSec, int64(rrs.endDelta), int64(rrs.endUp), endBits)
	}
	out.Records = append(out.Records, rr)
	out.Reversed++
}

// SPDX-License-Identifier: Apache-2.0

package wire

// IPFIX timestamps relative to sysUpTime without a system init time.
//
// flowStartSysUpTime (IE 22) and flowEndSysUpTime (IE 21) count
// milliseconds since the exporter's (re-)initialisation. NetFlow v9 puts
// the sysUpTime of the export in its header, so a v9 collector knows where
// "now" is on that clock. The IPFIX header has no sysUpTime: the absolute
// base is systemInitTimeMilliseconds (IE 160), which RFC 5153 section 4.7
// asks exporters to send. Some do, in an options record (softflowd) or in
// every data record (MikroTik RouterOS 7, when "sys-init-time" is among the
// fields of /ip traffic-flow ipfix); the decoder uses it, from the record
// first, then from the domain's last options (or data) record. Others never
// do: RouterOS 6 and RouterOS 7 configurations without sys-init-time, and
// SonicWall, send IEs 21/22 alone.
//
// For those the decoder estimates the init time per observation domain of
// the session. Every record ends before the message that carries it leaves
// the exporter, so for its end uptime u and the export time E (seconds in
// the header):
//
//	init + u <= actual export time < E + 1 s
//
// Each record thus bounds init from above, and E - u, the init time at
// which the record's last packet would have been seen at E, is the
// estimate it offers. The session keeps the earliest estimate seen (the
// tightest bound, modulo 2^32 ms so the 49.7-day wrap of the 32-bit
// uptime is harmless), which comes from the record whose last packet was
// closest to its export: a flow expired by the active timeout or by a
// full cache, which is exported within moments. Until such a record has
// been seen, times can be late by the exporter's inactive timeout (15 s
// by default on RouterOS), never later than the export time and at most
// one second early. When a whole data set offers estimates more than
// reinitSlack later than the kept one, the exporter has restarted (its
// uptime went back): the estimate starts again from that set.
//
// The alternative, leaving such times zero, loses the one thing most users
// ask of a flow after its addresses: when it happened. An estimate within
// an inactive timeout is what nfdump and pmacct users get from v5/v9 of
// the same devices in practice (export delay and clock skew apart).

// reinitSlack is how much later than the kept estimate a whole data set's
// best estimate must be to mean that the exporter restarted. Exporters
// expire idle flows after seconds to minutes; an hour is beyond any
// inactive timeout in use.
const reinitSlack = 3600 * 1000

// pendingTime is a record whose timestamps wait for the init time estimate
// of its data set.
type pendingTime struct {
	index int // in Data.Records
	rs    recState
}

// modDiff returns how much later unix ms b is than a on the 32-bit uptime
// clock (modulo 2^32 ms): negative when b is earlier.
func modDiff(a, b int64) int32 { return int32(uint32(b - a)) }

// resolvePending resolves the times of the records finishRecord deferred:
// it updates the domain's init time estimate with what the set offers and
// resolves each record against it.
func (s *Templates) resolvePending(out *Data, ctx *Context) {
	if len(s.pending) == 0 {
		return
	}
	// The set's best estimate: the earliest E - u.
	var best int64
	for i := range s.pending {
		rs := &s.pending[i].rs
		u := rs.endUp
		if rs.seen&seenEndUp == 0 {
			u = rs.startUp
		}
		c := ctx.ExportMs - int64(u)
		if i == 0 || modDiff(c, best) > 0 {
			best = c
		}
	}
	est := best
	if st := s.domain(ctx.Domain, true); st != nil {
		switch d := modDiff(st.estInitMs, best); {
		case !st.estKnown, d < 0, d > reinitSlack:
			st.estInitMs, st.estKnown = best, true
		}
		est = st.estInitMs
	}
	// Resolve as NetFlow v9 does, with the uptime the exporter had at E
	// by the estimate: wrap-around is handled there.
	c := *ctx
	c.UptimeMs = int64(uint32(ctx.ExportMs - est))
	for i := range s.pending {
		p := &s.pending[i]
		r := &out.Records[p.index]
		rs := &p.rs
		r.Start = rs.resolveTime(&c, 0, rs.startNs, rs.startMs, rs.startSec, int64(rs.startDelta), int64(rs.startUp),
			[5]uint32{seenStartNs, seenStartMs, seenStartSec, seenStartDelta, seenStartUp})
		r.End = rs.resolveTime(&c, 0, rs.endNs, rs.endMs, rs.endSec, int64(rs.endDelta), int64(rs.endUp),
			[5]uint32{seenEndNs, seenEndMs, seenEndSec, seenEndDelta, seenEndUp})
	}
	s.pending = s.pending[:0]
}

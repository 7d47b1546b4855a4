// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// IPFIX with sysUpTime-relative timestamps (IEs 21/22) in the MikroTik
// RouterOS style: RouterOS 6 sends no systemInitTimeMilliseconds at all,
// RouterOS 7 can carry it in every data record ("sys-init-time"), softflowd
// sends it in an options record.

// mtMessage is an IPFIX message of domain 0 exported at unix second
// export.
func mtMessage(export uint32, seq uint32, sets ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, Version)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, export)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, 0)
	for _, s := range sets {
		b = append(b, s...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// The RouterOS 6 template (a subset of its fields, in its order):
// tcpControlBits, destinationTransportPort, ingressInterface,
// flowEndSysUpTime, sourceIPv4Address, octetDeltaCount,
// destinationIPv4Address, flowStartSysUpTime, packetDeltaCount,
// sourceTransportPort, protocolIdentifier.
var mtTemplate = cat(u16s(256, 11), u16s(6, 1, 11, 2, 10, 4, 21, 4, 8, 4, 1, 4, 12, 4, 22, 4, 2, 4, 7, 2, 4, 1))

// mtRecord is a UDP flow 198.18.0.1:port > 198.18.0.2:53 whose first and
// last packets were at the given uptimes (ms).
func mtRecord(port uint16, start, end uint32) []byte {
	return cat([]byte{0}, be(53, 2), be(2, 4), be(uint64(end), 4), []byte{198, 18, 0, 1}, be(1000, 4),
		[]byte{198, 18, 0, 2}, be(uint64(start), 4), be(10, 4), be(uint64(port), 2), []byte{flow.ProtoUDP})
}

type span struct{ start, end time.Time }

func decodeTimes(t *testing.T, s *Session, msg []byte) []span {
	t.Helper()
	var m Message
	if err := s.Decode(&m, msg); err != nil {
		t.Fatal(err)
	}
	var out []span
	for _, r := range m.Records {
		if r.Packets != 10 || r.Octets != 1000 || r.Proto != flow.ProtoUDP {
			t.Fatalf("record %+v", r)
		}
		out = append(out, span{r.Start, r.End})
	}
	return out
}

func checkSpans(t *testing.T, what string, got []span, want ...span) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !got[i].start.Equal(want[i].start) || !got[i].end.Equal(want[i].end) {
			t.Errorf("%s: record %d: %v .. %v, want %v .. %v", what, i, got[i].start, got[i].end, want[i].start, want[i].end)
		}
	}
}

// TestUptimeWithoutInitTime: RouterOS 6. The init time is estimated per
// domain from the export times: each record ends before its export, so
// export - end uptime bounds the init time from above, and the tightest
// bound seen is kept.
func TestUptimeWithoutInitTime(t *testing.T) {
	const e1 = 1767323045                     // 2026-01-02 03:04:05 UTC
	boot := int64(e1)*1000 - 86_400_000 - 123 // the exporter booted a day and 123 ms before
	up := func(at time.Time) uint32 { return uint32(at.UnixMilli() - boot) }
	ms := func(sec int64, milli int64) time.Time { return time.UnixMilli(sec*1000 + milli).UTC() }
	s := NewSession(wire.Limits{})

	// An idle flow expired 15 s after its last packet, listed before an
	// active one whose last packet was 200 ms before the export: both are
	// resolved with the estimate the whole set gives (200 ms late).
	idle := span{ms(e1, -20_000), ms(e1, -15_000)}
	active := span{ms(e1, -60_000), ms(e1, -200)}
	got := decodeTimes(t, s, mtMessage(e1, 0, set(SetTemplate, mtTemplate),
		set(256, mtRecord(1, up(idle.start), up(idle.end)), mtRecord(2, up(active.start), up(active.end)))))
	late := 200 * time.Millisecond
	checkSpans(t, "first message", got,
		span{idle.start.Add(late), idle.end.Add(late)}, span{active.start.Add(late), active.end.Add(late)})

	// A later message with only a stale flow does not move the estimate.
	e2 := int64(e1 + 30)
	stale := span{ms(e2, -40_000), ms(e2, -15_000)}
	got = decodeTimes(t, s, mtMessage(uint32(e2), 2, set(256, mtRecord(3, up(stale.start), up(stale.end)))))
	checkSpans(t, "stale flow", got, span{stale.start.Add(late), stale.end.Add(late)})

	// A flow whose last packet was at the export second tightens it: from
	// then on times are exact.
	e3 := int64(e1 + 60)
	fresh := span{ms(e3, -5_000), ms(e3, 0)}
	got = decodeTimes(t, s, mtMessage(uint32(e3), 3, set(256, mtRecord(4, up(fresh.start), up(fresh.end)), mtRecord(5, up(stale.start), up(stale.end)))))
	checkSpans(t, "fresh flow", got, fresh, stale)

	// Past the 2^32 ms wrap of the uptime (49.7 days after boot), a flow
	// that started before the wrap and ended after it.
	wrap := boot + 1<<32
	e4 := wrap/1000 + 10
	across := span{time.UnixMilli(wrap - 3_000).UTC(), ms(e4, -100)}
	got = decodeTimes(t, s, mtMessage(uint32(e4), 4, set(256, mtRecord(6, up(across.start), up(across.end)))))
	checkSpans(t, "across the wrap", got, across)

	// The exporter restarts: uptimes start again near zero, every estimate
	// of the set is far later than the kept one, and the estimate starts
	// again from the set.
	e5 := e4 + 7200
	reboot := e5*1000 - 90_000 // booted 90 s before the export
	after := span{time.UnixMilli(reboot + 10_000).UTC(), ms(e5, -1_000)}
	upR := func(at time.Time) uint32 { return uint32(at.UnixMilli() - reboot) }
	got = decodeTimes(t, s, mtMessage(uint32(e5), 0, set(256, mtRecord(7, upR(after.start), upR(after.end)))))
	second := time.Second
	checkSpans(t, "after a restart", got, span{after.start.Add(second), after.end.Add(second)})
}

// TestUptimeInitTimeOptions: systemInitTimeMilliseconds in an options
// record (softflowd, and what RFC 5153 section 4.7 asks) replaces the
// estimate from the message that carries it on, data records of the same
// message included.
func TestUptimeInitTimeOptions(t *testing.T) {
	const e1 = 1767323045
	boot := int64(e1)*1000 - 3_600_000
	up := func(at time.Time) uint32 { return uint32(at.UnixMilli() - boot) }
	idle := span{time.UnixMilli(e1*1000 - 30_000).UTC(), time.UnixMilli(e1*1000 - 15_000).UTC()}
	s := NewSession(wire.Limits{})

	// Before any options record: estimated, 15 s late.
	got := decodeTimes(t, s, mtMessage(e1, 0, set(SetTemplate, mtTemplate), set(256, mtRecord(1, up(idle.start), up(idle.end)))))
	late := 15 * time.Second
	checkSpans(t, "estimated", got, span{idle.start.Add(late), idle.end.Add(late)})

	// Options template: scope meteringProcessId, systemInitTimeMilliseconds.
	opt := cat(u16s(257, 2, 1), u16s(143, 4, 160, 8))
	got = decodeTimes(t, s, mtMessage(e1+1, 1, set(SetOptionsTemplate, opt), set(257, be(1, 4), be(uint64(boot), 8)),
		set(256, mtRecord(2, up(idle.start), up(idle.end)))))
	checkSpans(t, "options record", got, idle)
}

// TestUptimeInitTimeInRecord: RouterOS 7 with sys-init-time carries
// systemInitTimeMilliseconds in the data record itself, after the uptimes.
func TestUptimeInitTimeInRecord(t *testing.T) {
	const e1 = 1767323045
	boot := int64(e1)*1000 - 7_200_000
	tpl := cat(u16s(300, 8), u16s(8, 4, 12, 4, 22, 4, 21, 4, 2, 4, 1, 4), u16s(4, 1, 160, 8))
	rec := func(start, end int64) []byte {
		return cat([]byte{198, 18, 0, 1}, []byte{198, 18, 0, 2}, be(uint64(start-boot), 4), be(uint64(end-boot), 4),
			be(10, 4), be(1000, 4), []byte{flow.ProtoUDP}, be(uint64(boot), 8))
	}
	s := NewSession(wire.Limits{})
	start, end := int64(e1)*1000-45_000, int64(e1)*1000-15_000
	got := decodeTimes(t, s, mtMessage(e1, 0, set(SetTemplate, tpl), set(300, rec(start, end))))
	checkSpans(t, "sys-init-time", got, span{time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC()})
	// The domain learned it: a RouterOS 6 style record of the same domain
	// (without IE 160) is exact too, not estimated.
	got = decodeTimes(t, s, mtMessage(e1, 1, set(SetTemplate, mtTemplate),
		set(256, mtRecord(1, uint32(start-boot), uint32(end-boot)))))
	checkSpans(t, "learned", got, span{time.UnixMilli(start).UTC(), time.UnixMilli(end).UTC()})
}

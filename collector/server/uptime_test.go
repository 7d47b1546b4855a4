// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"testing"
	"time"
)

// An IPFIX exporter that sends sysUpTime-relative times (IEs 22/21) and
// never systemInitTimeMilliseconds (MikroTik RouterOS 6): its records are
// stored with times estimated from the export time, also when its data
// arrived before its template and was held.
func TestHandlerUptimeWithoutInitTime(t *testing.T) {
	h, sink := newTestHandler(t, HandlerConfig{})
	boot := t0.UnixMilli() - 86_400_000 // t0 is the messages' export time
	u32 := func(v int64) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	// src, dst, packets, octets, flowStartSysUpTime, flowEndSysUpTime.
	tpl := tmpl(300, 8, 4, 12, 4, 2, 4, 1, 4, 22, 4, 21, 4)
	rec := func(i int, start, end time.Duration) []byte {
		return cat(basicRecord(i), u32(t0.Add(-start).UnixMilli()-boot), u32(t0.Add(-end).UnixMilli()-boot))
	}
	// Held: an idle flow that ended 15 s before the export and one whose
	// last packet left with the export.
	h.HandlePacket(exporter1, ipfixMsg(1, 0, set(300, rec(1, 20*time.Second, 15*time.Second), rec(2, 5*time.Second, 0))), t0)
	h.HandlePacket(exporter1, ipfixMsg(1, 2, set(2, tpl)), t0)
	got := sink.records()
	if len(got) != 2 {
		t.Fatalf("%d records stored, want 2; stats %+v", len(got), h.Stats().Exporters)
	}
	for i, w := range [][2]time.Duration{{20 * time.Second, 15 * time.Second}, {5 * time.Second, 0}} {
		if r := got[i]; !r.Start.Equal(t0.Add(-w[0])) || !r.End.Equal(t0.Add(-w[1])) {
			t.Errorf("record %d: %v .. %v, want %v .. %v", i, r.Start, r.End, t0.Add(-w[0]), t0.Add(-w[1]))
		}
	}
}

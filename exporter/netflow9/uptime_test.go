// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// MikroTik RouterOS NetFlow v9: the header's sysUptime and unix seconds
// anchor FIRST_SWITCHED/LAST_SWITCHED (IEs 22/21), for IPv4 and IPv6
// templates alike; no options record is needed.

// rosPacket is a v9 packet from source id 0 with the given header times.
func rosPacket(uptime, unixSecs, seq uint32, sets ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, Version)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint32(b, uptime)
	b = binary.BigEndian.AppendUint32(b, unixSecs)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, 0)
	for _, s := range sets {
		b = append(b, s...)
	}
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestRouterOSUptime(t *testing.T) {
	// RouterOS's template order: FIRST_SWITCHED, LAST_SWITCHED, counters,
	// interfaces, then the key.
	tpl4 := tmplRec(256, 22, 4, 21, 4, 1, 4, 2, 4, 10, 4, 14, 4, 8, 4, 12, 4, 4, 1, 7, 2, 11, 2)
	tpl6 := tmplRec(257, 22, 4, 21, 4, 1, 4, 2, 4, 10, 4, 14, 4, 27, 16, 28, 16, 4, 1, 7, 2, 11, 2)
	a6 := netip.MustParseAddr("fd00::1").As16()
	b6 := netip.MustParseAddr("fd00::2").As16()

	const export = 1767323045 // header unix seconds
	for _, tt := range []struct {
		name       string
		uptime     uint32 // header sysUptime
		start, end uint32 // FIRST/LAST_SWITCHED
		wantStart  time.Duration
		wantEnd    time.Duration // before the export time
	}{
		{"plain", 86_400_000, 86_400_000 - 30_000, 86_400_000 - 15_000, 30 * time.Second, 15 * time.Second},
		// sysUptime wrapped after 49.7 days; the flow started before.
		{"wrapped", 500, 1<<32 - 2_000, 100, 2500 * time.Millisecond, 400 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(wire.Limits{})
			rec4 := cat(u32(tt.start), u32(tt.end), u32(1000), u32(10), u32(2), u32(3),
				[]byte{198, 18, 0, 1}, []byte{198, 18, 0, 2}, []byte{flow.ProtoUDP}, u16s(40000, 53))
			rec6 := cat(u32(tt.start), u32(tt.end), u32(2000), u32(20), u32(2), u32(3),
				a6[:], b6[:], []byte{flow.ProtoUDP}, u16s(40000, 53))
			var m Message
			if err := s.Decode(&m, rosPacket(tt.uptime, export, 0, flowset(SetTemplate, tpl4, tpl6),
				flowset(256, rec4), flowset(257, rec6))); err != nil {
				t.Fatal(err)
			}
			if len(m.Records) != 2 {
				t.Fatalf("%d records", len(m.Records))
			}
			e := time.Unix(export, 0).UTC()
			for i, r := range m.Records {
				if !r.Start.Equal(e.Add(-tt.wantStart)) || !r.End.Equal(e.Add(-tt.wantEnd)) {
					t.Errorf("record %d: %v .. %v, want %v .. %v", i, r.Start, r.End, e.Add(-tt.wantStart), e.Add(-tt.wantEnd))
				}
			}
			if r := m.Records[1]; r.Src != netip.AddrFrom16(a6) || r.Dst != netip.AddrFrom16(b6) || r.Packets != 20 || r.Octets != 2000 {
				t.Errorf("IPv6 record %+v", r)
			}
		})
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

func be(v uint64, n int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b[8-n:]
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestForeignExporter decodes what other exporters send: reduced-size
// counters, next hop, AS numbers, masks, seconds, sysUpTime-relative and
// NTP timestamps, enterprise and variable-length fields.
func TestForeignExporter(t *testing.T) {
	s := NewSession(wire.Limits{})
	var m Message
	exportSec := uint64(0x695735a5)
	initMs := exportSec*1000 - 3_600_000 // booted one hour before export

	tplA := cat(u16s(400, 16),
		u16s(8, 4, 12, 4, 15, 4, 16, 4, 17, 2, 9, 1, 13, 1),
		u16s(1, 4, 2, 2), // reduced-size octetDeltaCount, packetDeltaCount
		u16s(150, 4, 151, 4),
		u16s(0x8000|100, 4), be(9, 4), // enterprise field, PEN 9
		u16s(0x8000|101, 0xffff), be(29305, 4), // variable-length enterprise field
		u16s(4, 1, 11, 2),
		u16s(243, 2))
	tplB := cat(u16s(401, 11),
		u16s(27, 16, 28, 16, 29, 1, 30, 1, 62, 16),
		u16s(85, 8, 86, 8), // totals, no deltas
		u16s(22, 4, 21, 4), // sysUpTime-relative, needs systemInitTime
		u16s(4, 1, 178, 1))
	tplC := cat(u16s(402, 6), u16s(8, 4, 12, 4, 154, 8, 155, 8, 4, 1, 11, 2))
	opt := cat(u16s(403, 3, 1), u16s(149, 4, 160, 8, 34, 4))

	var vlong [300]byte
	recA := cat(
		[]byte{198, 18, 0, 1}, []byte{198, 18, 0, 2}, []byte{198, 18, 0, 254},
		be(4200000000, 4), be(64512, 2), []byte{24, 16},
		be(123456, 4), be(99, 2),
		be(exportSec-60, 4), be(exportSec-1, 4),
		[]byte{1, 2, 3, 4},
		[]byte{255}, be(300, 2), vlong[:],
		[]byte{flow.ProtoUDP}, be(53, 2),
		be(42, 2))
	ntp := func(unixNs int64) []byte {
		sec := uint64(unixNs/1e9) + 2208988800
		frac := uint64(unixNs%1e9) << 32 / 1e9
		return be(sec<<32|frac, 8)
	}
	start := time.Unix(int64(exportSec)-30, 250_000_000).UTC()
	recC := cat([]byte{198, 18, 0, 3}, []byte{198, 18, 0, 4}, ntp(start.UnixNano()), ntp(start.Add(time.Second).UnixNano()),
		[]byte{flow.ProtoICMP}, be(0x0800, 2)) // ICMP echo request in the destination port
	a6 := netip.MustParseAddr("fd00::10").As16()
	b6 := netip.MustParseAddr("fd00::20").As16()
	nh6 := netip.MustParseAddr("fd00::1").As16()
	recB := cat(a6[:], b6[:], []byte{64, 48}, nh6[:], be(5000, 8), be(5, 8), be(1000, 4), be(2500, 4), []byte{flow.ProtoICMPv6, 135})
	optRec := cat(be(9, 4), be(initMs, 8), be(512, 4))

	msg := message(
		set(SetTemplate, tplA, tplB, tplC),
		set(SetOptionsTemplate, opt),
		set(403, optRec),
		set(400, recA),
		set(401, recB),
		set(402, recC, []byte{0, 0, 0}), // padding
	)
	if err := s.Decode(&m, msg); err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(int64(exportSec), 0).UTC()
	want := []flow.Record{{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"),
		NextHop: netip.MustParseAddr("198.18.0.254"), SrcAS: 4200000000, DstAS: 64512,
		SrcMask: 24, DstMask: 16, Octets: 123456, Packets: 99,
		Start: exp.Add(-time.Minute), End: exp.Add(-time.Second),
		Proto: flow.ProtoUDP, DstPort: 53, VLAN: 42,
		SamplingInterval: 512, ObservationDomain: 9,
	}, {
		Src: netip.MustParseAddr("fd00::10"), Dst: netip.MustParseAddr("fd00::20"),
		SrcMask: 64, DstMask: 48, NextHop: netip.MustParseAddr("fd00::1"),
		Octets: 5000, Packets: 5,
		Start: time.UnixMilli(int64(initMs) + 1000).UTC(), End: time.UnixMilli(int64(initMs) + 2500).UTC(),
		Proto: flow.ProtoICMPv6, ICMPType: 135,
		SamplingInterval: 512, ObservationDomain: 9,
	}, {
		Src: netip.MustParseAddr("198.18.0.3"), Dst: netip.MustParseAddr("198.18.0.4"),
		Start: start, End: start.Add(time.Second),
		Proto: flow.ProtoICMP, ICMPType: 8,
		SamplingInterval: 512, ObservationDomain: 9,
	}}
	if len(m.Records) != len(want) {
		t.Fatalf("%d records, want %d", len(m.Records), len(want))
	}
	for i := range want {
		if m.Records[i] != want[i] {
			t.Errorf("record %d:\ngot  %+v\nwant %+v", i, m.Records[i], want[i])
		}
	}
	if len(m.Stats) != 1 || !m.Stats[0].SystemInit.Equal(time.UnixMilli(int64(initMs))) {
		t.Errorf("stats %+v", m.Stats)
	}
	if len(m.Sampling) != 1 || m.Sampling[0].Interval != 512 {
		t.Errorf("sampling %+v", m.Sampling)
	}
}

func TestReadMessage(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{Stream: true}, clk)
	var s wiretest.Sink
	if _, err := e.Encode(numbered(50, true), s.Emit); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	for _, b := range s.Bytes() {
		stream.Write(b)
	}
	buf := make([]byte, 0, 64)
	for i, want := range s.Bytes() {
		got, err := ReadMessage(&stream, buf)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d: %v", i, err)
		}
		buf = got
	}
	if _, err := ReadMessage(&stream, buf); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	cut := s.Bytes()[0][:100]
	if _, err := ReadMessage(bytes.NewReader(cut), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut message: %v", err)
	}
	if _, err := ReadMessage(bytes.NewReader(cut[:7]), nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut header: %v", err)
	}
	bad := bytes.Clone(cut)
	binary.BigEndian.PutUint16(bad[2:], 15)
	if _, err := ReadMessage(bytes.NewReader(bad), nil); !errors.Is(err, wire.ErrLength) {
		t.Errorf("length 15: %v", err)
	}
	bad[1] = 9
	if _, err := ReadMessage(bytes.NewReader(bad), nil); !errors.Is(err, wire.ErrVersion) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version 9: %v", err)
	}
}

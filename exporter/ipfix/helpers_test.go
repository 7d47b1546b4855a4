// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"bytes"
	"flag"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// t0 is the fixed export time of the tests.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// recordV4 sets every field the IPFIX templates carry.
func recordV4() flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.1.2"),
		SrcPort: 43512, DstPort: 443, Proto: flow.ProtoTCP,
		VLAN: 100, InnerVLAN: 200, InIf: 3, OutIf: 70000, Direction: flow.Egress,
		Packets: 1<<33 + 5, Octets: 1<<40 + 7,
		Start:    t0.Add(-90*time.Second + 123*time.Millisecond),
		End:      t0.Add(-1*time.Second + 456*time.Millisecond),
		TCPFlags: flow.TCPSyn | flow.TCPAck | flow.TCPFin | flow.TCPEce | flow.TCPCwr | flow.TCPNs,
		TOS:      0xb8, MinTTL: 60, MaxTTL: 64, EndReason: flow.EndOfFlow,
	}
}

func recordV6() flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00:1:2:3:4:5:6:7"),
		Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPCode: 3,
		VLAN: 4094, InIf: 1 << 31, OutIf: 2, Direction: flow.Ingress,
		Packets: 3, Octets: 312,
		Start: t0.Add(-10 * time.Minute),
		End:   t0.Add(-5*time.Minute + 999*time.Millisecond),
		TOS:   1, MinTTL: 1, MaxTTL: 255, EndReason: flow.EndIdle,
	}
}

type sink struct {
	pkts []Packet
}

func (s *sink) emit(p Packet) error {
	p.Bytes = bytes.Clone(p.Bytes)
	s.pkts = append(s.pkts, p)
	return nil
}

func (s *sink) bytes() [][]byte {
	var out [][]byte
	for _, p := range s.pkts {
		out = append(out, p.Bytes)
	}
	return out
}

func newEncoder(t testing.TB, cfg Config, clk *fakeClock) *Encoder {
	t.Helper()
	cfg.Clock = clk.Now
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = t0.Add(-time.Hour)
	}
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// decodeAll decodes messages in order with one session and returns all
// records and options data.
func decodeAll(t testing.TB, s *Session, msgs [][]byte) (wire.Data, []Header) {
	t.Helper()
	var all wire.Data
	var hdrs []Header
	var m Message
	for i, b := range msgs {
		if err := s.Decode(&m, b); err != nil {
			t.Fatalf("decode message %d: %v", i, err)
		}
		if len(m.Missing) != 0 {
			t.Fatalf("message %d: %d data sets without template", i, len(m.Missing))
		}
		hdrs = append(hdrs, m.Header)
		all.Records = append(all.Records, m.Records...)
		all.Stats = append(all.Stats, m.Stats...)
		all.Interfaces = append(all.Interfaces, m.Interfaces...)
		all.Sampling = append(all.Sampling, m.Sampling...)
		all.Templates += m.Templates
	}
	return all, hdrs
}

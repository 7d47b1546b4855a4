// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// responder returns the other direction of r's flow with its own counts.
func responder(r flow.Record, packets uint64) flow.Record {
	rr := r
	rr.Src, rr.Dst = r.Dst, r.Src
	rr.SrcPort, rr.DstPort = r.DstPort, r.SrcPort
	rr.InIf, rr.OutIf = r.OutIf, r.InIf
	rr.Direction = r.Direction ^ 1
	if t, ok := flow.ICMPReplyType(r.Proto, r.ICMPType); r.IsICMP() && ok {
		rr.ICMPType = t
	}
	rr.Packets, rr.Octets = packets, 77*packets
	rr.TCPFlags, rr.TOS, rr.MinTTL, rr.MaxTTL = flow.TCPSyn|flow.TCPAck, 0x10, 50, 55
	rr.Start, rr.End = r.Start.Add(time.Millisecond), r.End.Add(2*time.Millisecond)
	if packets == 0 {
		rr.Octets, rr.TCPFlags, rr.TOS, rr.MinTTL, rr.MaxTTL = 0, 0, 0, 0, 0
		rr.Start, rr.End = time.Time{}, time.Time{}
	}
	return rr
}

// biflowPairs are a TCP biflow, an ICMPv6 echo biflow and an IPv4 flow
// whose responder sent nothing.
func biflowPairs() []flow.Record {
	tcp, ping := recordV4(), recordV6()
	lone := recordV4()
	lone.SrcPort, lone.Proto, lone.TCPFlags = 5353, flow.ProtoUDP, 0
	return []flow.Record{tcp, responder(tcp, 9), ping, responder(ping, 3), lone, responder(lone, 0)}
}

// TestBiflowRoundTrip: biflow records decode into the directional records
// they were made from; a responder without packets gives no record.
func TestBiflowRoundTrip(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, Biflow: true}, &wiretest.Clock{T: t0})
	var s wiretest.Sink
	pairs := biflowPairs()
	n, err := e.Encode(pairs, s.Emit)
	if err != nil || n != 3 {
		t.Fatalf("Encode = %d, %v; want 3 biflow records", n, err)
	}
	sess := newSession(wire.Limits{})
	var got []flow.Record
	reversed, dataRecords := 0, 0
	for _, b := range s.Bytes() {
		m, err := sess.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Records...)
		reversed += m.Reversed
		dataRecords += m.DataRecords
	}
	var want []flow.Record
	for i, r := range pairs {
		if r.Packets == 0 {
			continue
		}
		r.ObservationDomain = 7
		if i%2 == 1 {
			r.EndReason = pairs[i-1].EndReason
		}
		want = append(want, r)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if reversed != 2 {
		t.Errorf("%d records from reverse elements, want 2", reversed)
	}
	if dataRecords != 3+1 { // the three biflow records and the statistics options record
		t.Errorf("%d data records, want 4", dataRecords)
	}
	if _, err := e.Encode(pairs[:3], s.Emit); err == nil {
		t.Errorf("an odd number of records encoded as biflows")
	}
}

// TestBiflowTshark: Wireshark decodes the biflow records, reverse
// elements included, without expert warnings.
func TestBiflowTshark(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, Biflow: true}, &wiretest.Clock{T: t0})
	wiretest.Announce(e)
	var s wiretest.Sink
	wiretest.Encode(t, e, &s, biflowPairs()...)
	out := wiretest.Tshark(t, 4739, s.Bytes())
	if testing.Verbose() {
		t.Log(out)
	}
	wiretest.Contains(t, out, "PEN: IPFIX Reverse Information Element Private Enterprise (29305)",
		"Packets: 9 (Reverse Type 2 PKTS)", "Octets: 693 (Reverse Type 1 BYTES)", "Packets: 3 (Reverse Type 2 PKTS)",
		"TCP Flags: 0x0012, ACK, SYN (Reverse Type 6 TCP_FLAGS)")
}

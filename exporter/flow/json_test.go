// SPDX-License-Identifier: Apache-2.0

package flow

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// randomRecord sets every field of a record, each left zero now and then.
func randomRecord(rng *rand.Rand) Record {
	some := func() bool { return rng.IntN(4) != 0 }
	addr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			a := netip.AddrFrom16(b)
			if rng.IntN(8) == 0 {
				a = a.WithZone("veth0")
			}
			return a
		}
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
	}
	v6 := rng.IntN(2) == 0
	r := Record{Src: addr(v6), Dst: addr(v6), Proto: uint8(rng.Uint32())}
	if some() {
		r.SrcPort, r.DstPort = uint16(rng.Uint32()), uint16(rng.Uint32())
	}
	if some() {
		r.ICMPType, r.ICMPCode = uint8(rng.Uint32()), uint8(rng.Uint32())
	}
	if some() {
		r.VLAN, r.InnerVLAN = uint16(rng.IntN(4096)), uint16(rng.IntN(4096))
	}
	if some() {
		r.InIf, r.OutIf = rng.Uint32(), rng.Uint32()
	}
	r.Direction = Direction(rng.IntN(3))
	r.Packets, r.Octets = rng.Uint64(), rng.Uint64()
	if some() {
		r.Start = time.Unix(0, rng.Int64N(1<<62)).UTC()
	}
	if some() {
		r.End = time.Unix(0, rng.Int64N(1<<62)).UTC()
	}
	r.TCPFlags, r.TOS = uint16(rng.IntN(512)), uint8(rng.Uint32())
	r.MinTTL, r.MaxTTL = uint8(rng.Uint32()), uint8(rng.Uint32())
	r.EndReason = EndReason(rng.IntN(8))
	if some() {
		r.NextHop = addr(rng.IntN(2) == 0)
	}
	r.SrcAS, r.DstAS = rng.Uint32(), rng.Uint32()
	r.SrcMask, r.DstMask = uint8(rng.IntN(129)), uint8(rng.IntN(129))
	r.SamplingInterval = rng.Uint32()
	if some() {
		r.Exporter = addr(rng.IntN(2) == 0)
	}
	r.ObservationDomain = rng.Uint32()
	if some() {
		r.CgroupID = rng.Uint64()
		r.Cgroup = fmt.Sprintf("/system.slice/unit-%d.service", rng.IntN(100))
	}
	return r
}

func TestJSONRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		r := randomRecord(rng)
		if i == 0 {
			r = Record{} // the zero record too
		}
		b, err := json.Marshal(NewJSON(&r))
		if err != nil {
			t.Fatal(err)
		}
		var j JSON
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got, err := j.Record()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != r {
			t.Fatalf("round trip changed the record:\n in  %+v\n out %+v\n json %s", r, got, b)
		}
	}
}

func TestJSONFields(t *testing.T) {
	r := Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), SrcPort: 40000, DstPort: 443,
		Proto: ProtoTCP, Packets: 10, Octets: 15000, TCPFlags: TCPSyn | TCPAck,
		Start: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC), End: time.Date(2025, 3, 14, 9, 26, 55, 500e6, time.UTC),
		Direction: Egress, EndReason: EndOfFlow,
	}
	b, err := json.Marshal(NewJSON(&r))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"first":"2025-03-14T09:26:53Z","last":"2025-03-14T09:26:55.5Z","duration_ms":2500,"proto":6,"proto_name":"TCP",` +
		`"src":"198.18.0.1","dst":"198.18.0.2","src_port":40000,"dst_port":443,"packets":10,"bytes":15000,"pps":4,"bps":48000,` +
		`"bpp":1500,"tcp_flags":18,"direction":"egress","end_reason":"end-of-flow"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestJSONErrors(t *testing.T) {
	for _, in := range []string{`{"src":"300.1.1.1"}`, `{"direction":"sideways"}`, `{"end_reason":"bored"}`, `{"exporter":"x"}`} {
		var j JSON
		if err := json.Unmarshal([]byte(in), &j); err != nil {
			t.Fatal(err)
		}
		_, err := j.Record()
		if err == nil || !strings.HasPrefix(err.Error(), "flow json: ") {
			t.Errorf("%s: got error %v, want a flow json error", in, err)
		}
	}
}

func TestDerived(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tt := range []struct {
		r                  Record
		dur, pps, bps, bpp uint64
		dport              uint16
	}{
		{Record{Packets: 10, Octets: 1000, Start: t0, End: t0.Add(2 * time.Second)}, 2000, 5, 4000, 100, 0},
		{Record{Packets: 3, Octets: 100, Start: t0, End: t0}, 0, 0, 0, 33, 0},
		{Record{Packets: 0, Octets: 0, Start: t0, End: t0.Add(-time.Second)}, 0, 0, 0, 0, 0},
		{Record{Proto: ProtoICMP, ICMPType: 8, ICMPCode: 1}, 0, 0, 0, 0, 8*256 + 1},
		{Record{Proto: ProtoTCP, DstPort: 22}, 0, 0, 0, 0, 22},
	} {
		r := tt.r
		if r.DurationMs() != tt.dur || r.PPS() != tt.pps || r.BPS() != tt.bps || r.BPP() != tt.bpp || r.NfDstPort() != tt.dport {
			t.Errorf("%+v: got %d %d %d %d %d", r, r.DurationMs(), r.PPS(), r.BPS(), r.BPP(), r.NfDstPort())
		}
	}
	if ProtoName(58) != "ICMP6" || ProtoName(250) != "250" {
		t.Error("protocol names")
	}
	if n, ok := ProtoNumber("TCP"); !ok || n != 6 {
		t.Error("protocol numbers")
	}
	if TCPFlagsString(TCPSyn|TCPAck) != "...A..S." {
		t.Error(TCPFlagsString(TCPSyn | TCPAck))
	}
}

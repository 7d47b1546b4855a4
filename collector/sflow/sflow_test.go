// SPDX-License-Identifier: Apache-2.0

package sflow

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	agent4 = netip.MustParseAddr("198.18.0.10")
	agent6 = netip.MustParseAddr("fd00::a")
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// counters2 is counters on an interface of an expanded source index.
var counters2 = func() InterfaceCounters {
	c := counters
	c.SourceIndex, c.Sequence, c.IfIndex, c.InOctets = 70000, 78, 70000, 12345
	return c
}()

var counters = InterfaceCounters{
	SourceType: 0, SourceIndex: 5, Sequence: 77,
	IfIndex: 5, IfType: 6, IfSpeed: 10_000_000_000, IfDirection: 1, IfStatus: 3,
	InOctets: 1 << 40, InUcastPkts: 1000, InMulticastPkts: 20, InBroadcastPkts: 3, InDiscards: 4, InErrors: 5, InUnknownProtos: 6,
	OutOctets: 1<<33 + 7, OutUcastPkts: 2000, OutMulticastPkts: 21, OutBroadcastPkts: 8, OutDiscards: 9, OutErrors: 10, PromiscuousMode: 2,
}

// crafted returns datagrams covering every format the decoder reads,
// and the records they must give.
func crafted() (dgs [][]byte, want [][]flow.Record) {
	// IPv4 agent: a compact sample (802.1Q, IPv4 UDP, switch, router and
	// gateway data), an expanded one (802.1ad, IPv6 hop-by-hop then TCP,
	// output discarded), and generic interface counters.
	udp4 := ether(etherIPv4, []uint16{42}, ipv4("198.18.1.1", "198.18.2.2", 17, 0x10, 60, 1400, 0x4000, udp(5000, 53)))
	hbh := append([]byte{6, 0}, make([]byte, 6)...) // hop-by-hop options, 8 octets, then TCP
	tcp6 := ether(etherIPv6, []uint16{100, 200}, ipv6("fd00::1", "fd00::2", 0, 0x28, 63, 1000, append(hbh, tcp(443, 51000, 0x112)...)))
	dgs = append(dgs, datagram(agent4, 3, 100,
		flowSample(sampleHdr{seq: 1, srcIndex: 5, rate: 1000, pool: 5000, drops: 2, in: 5, out: 7},
			rawHeader(headerEthernet, 18+1400+4, 4, udp4),
			extSwitch(42, 43), extRouter(mustAddr("198.18.0.254"), 24, 16),
			extGateway(mustAddr("198.18.0.253"), 64500, 64501, 64502, 64510, 64511)),
		expandedFlowSample(sampleHdr{seq: 2, srcType: 0, srcIndex: 9, rate: 512, pool: 9000, inFmt: 0, in: 3, outFmt: InterfaceDiscarded, out: 5},
			rawHeader(headerEthernet, 22+1040+4, 4, tcp6[:96])),
		counterSample(77, 0, 5, genericCounters(counters)),
	))
	want = append(want, []flow.Record{{
		Src: mustAddr("198.18.1.1"), Dst: mustAddr("198.18.2.2"), SrcPort: 5000, DstPort: 53, Proto: 17,
		VLAN: 42, InIf: 5, OutIf: 7, Packets: 1, Octets: 1400, TOS: 0x10, MinTTL: 60, MaxTTL: 60,
		NextHop: mustAddr("198.18.0.254"), SrcMask: 24, DstMask: 16, SrcAS: 64501, DstAS: 64511, SamplingInterval: 1000,
	}, {
		Src: mustAddr("fd00::1"), Dst: mustAddr("fd00::2"), SrcPort: 443, DstPort: 51000, Proto: 6, TCPFlags: 0x112,
		VLAN: 100, InnerVLAN: 200, InIf: 3, Packets: 1, Octets: 1040, TOS: 0x28, MinTTL: 63, MaxTTL: 63, SamplingInterval: 512,
	}})

	// IPv6 agent: IPv4 and IPv6 headers without Ethernet (ICMP, ICMPv6),
	// sampled IPv4 and IPv6 records instead of headers, a non-IP frame, a
	// later IPv4 fragment, a sample of another enterprise, an unsampled
	// rate of 0, and a header cut inside its ports.
	icmp4 := ipv4("198.18.3.3", "198.18.4.4", 1, 0, 64, 84, 0, []byte{8, 0, 0, 0, 0, 1, 0, 1})
	icmp6 := ipv6("fd00::3", "fd00::4", 58, 0, 64, 64, []byte{128, 0, 0, 0, 0, 1, 0, 1})
	sampled4 := element(recordSampledIPv4, u32(append(u32(nil, 576, 17), 198, 18, 5, 5, 198, 18, 6, 6), 123, 456, 0, 0x20))
	s6, d6 := mustAddr("fd00::5").As16(), mustAddr("fd00::6").As16()
	sampled6 := element(recordSampledIPv6, u32(append(append(u32(nil, 1280, 6), s6[:]...), d6[:]...), 80, 40000, 0x1b, 0))
	arp := ether(0x0806, nil, make([]byte, 28))
	frag := ether(etherIPv4, nil, ipv4("198.18.7.7", "198.18.8.8", 17, 0, 64, 500, 185, udp(1, 2)))
	short := ether(etherIPv4, nil, ipv4("198.18.9.9", "198.18.10.10", 6, 0, 64, 40, 0, []byte{0x12}))
	dgs = append(dgs, datagram(agent6, 0, 7,
		flowSample(sampleHdr{seq: 10, srcIndex: 1, rate: 1, pool: 10, in: unknownInterface, out: 2}, rawHeader(headerIPv4, 84, 0, icmp4)),
		flowSample(sampleHdr{seq: 11, srcIndex: 1, rate: 1, pool: 11, in: 1, out: unknownInterface}, rawHeader(headerIPv6, 104, 0, icmp6)),
		flowSample(sampleHdr{seq: 12, srcIndex: 1, rate: 2, pool: 12}, sampled4),
		flowSample(sampleHdr{seq: 13, srcIndex: 1, rate: 2, pool: 13}, sampled6),
		flowSample(sampleHdr{seq: 14, srcIndex: 1, rate: 2, pool: 14}, rawHeader(headerEthernet, 64, 4, arp)),
		flowSample(sampleHdr{seq: 15, srcIndex: 1, rate: 0, pool: 15}, rawHeader(headerEthernet, 518, 4, frag), element(4300<<12|7, nil)),
		flowSample(sampleHdr{seq: 16, srcIndex: 1, rate: 3, pool: 16, outFmt: InterfaceMultiple, out: 4}, rawHeader(headerEthernet, 58, 4, short)),
		expandedCounterSample(78, 0, 70000, element(2, make([]byte, 52)), genericCounters(counters2)),
		element(4300<<12|1, []byte{1, 2, 3, 4}), // last: tshark 4.0 reads no further
	))
	want = append(want, []flow.Record{
		{Src: mustAddr("198.18.3.3"), Dst: mustAddr("198.18.4.4"), Proto: 1, ICMPType: 8, Packets: 1, Octets: 84, MinTTL: 64, MaxTTL: 64, SamplingInterval: 1, OutIf: 2},
		{Src: mustAddr("fd00::3"), Dst: mustAddr("fd00::4"), Proto: 58, ICMPType: 128, Packets: 1, Octets: 104, MinTTL: 64, MaxTTL: 64, SamplingInterval: 1, InIf: 1},
		{Src: mustAddr("198.18.5.5"), Dst: mustAddr("198.18.6.6"), Proto: 17, SrcPort: 123, DstPort: 456, Packets: 1, Octets: 576, TOS: 0x20, SamplingInterval: 2},
		{Src: mustAddr("fd00::5"), Dst: mustAddr("fd00::6"), Proto: 6, SrcPort: 80, DstPort: 40000, TCPFlags: 0x1b, Packets: 1, Octets: 1280, SamplingInterval: 2},
		{Src: mustAddr("198.18.7.7"), Dst: mustAddr("198.18.8.8"), Proto: 17, Packets: 1, Octets: 500, MinTTL: 64, MaxTTL: 64},
		{Src: mustAddr("198.18.9.9"), Dst: mustAddr("198.18.10.10"), Proto: 6, Packets: 1, Octets: 40, MinTTL: 64, MaxTTL: 64, SamplingInterval: 3},
	})
	return dgs, want
}

func TestDecodeCrafted(t *testing.T) {
	dgs, want := crafted()
	agents := []netip.Addr{agent4, agent6}
	subs := []uint32{3, 0}
	var d Datagram
	for i, b := range dgs {
		if err := Decode(&d, b, t0); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if d.Agent != agents[i] || d.SubAgent != subs[i] || d.Uptime != 123456*time.Millisecond {
			t.Errorf("datagram %d: agent %v sub-agent %d uptime %v", i, d.Agent, d.SubAgent, d.Uptime)
		}
		for j := range want[i] {
			w := &want[i][j]
			w.Start, w.End = t0, t0
			w.Exporter, w.ObservationDomain = agents[i], subs[i]
		}
		if !reflect.DeepEqual(d.Records, want[i]) {
			t.Errorf("datagram %d records:\n got %+v\nwant %+v", i, d.Records, want[i])
		}
	}
	// The second datagram's counts: an Ethernet counters block (format 2)
	// is skipped.
	if d.NotIP != 1 || d.SkippedSamples != 1 || d.SkippedRecords != 2 || len(d.Flows) != 7 || d.CounterSamples != 1 {
		t.Errorf("not IP %d, skipped samples %d records %d, flow samples %d, counter samples %d; want 1, 1, 2, 7, 1",
			d.NotIP, d.SkippedSamples, d.SkippedRecords, len(d.Flows), d.CounterSamples)
	}
	if len(d.Counters) != 1 || d.Counters[0] != counters2 {
		t.Errorf("expanded counter sample: %+v, want %+v", d.Counters, counters2)
	}
	if f := d.Flows[4]; f.Record != -1 || f.Sequence != 14 {
		t.Errorf("ARP sample %+v: want no record", f)
	}
	if f := d.Flows[6]; f.OutputFormat != InterfaceMultiple || f.Output != 4 || f.Record != 5 {
		t.Errorf("last sample %+v", f)
	}
	if err := Decode(&d, dgs[0], t0); err != nil {
		t.Fatal(err)
	}
	if len(d.Counters) != 1 || d.Counters[0] != counters {
		t.Errorf("counters %+v, want %+v", d.Counters, counters)
	}
	f := d.Flows[1]
	if !f.Expanded || f.SourceIndex != 9 || f.SamplingRate != 512 || f.SamplePool != 9000 || f.OutputFormat != InterfaceDiscarded || f.Output != 5 {
		t.Errorf("expanded sample %+v", f)
	}
	if f := d.Flows[0]; f.Expanded || f.Drops != 2 || f.SamplePool != 5000 || f.SourceIndex != 5 {
		t.Errorf("compact sample %+v", f)
	}
}

func TestIsSFlow(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{[]byte{0, 0, 0, 5, 0}, true},
		{[]byte{0, 0, 0, 2}, true},  // an older version: detected, then refused
		{[]byte{0, 5, 0, 1}, false}, // NetFlow v5
		{[]byte{0, 10, 0, 1}, false},
		{[]byte{0, 0, 0, 0}, false},
		{[]byte{0, 0, 0}, false},
	} {
		if got := IsSFlow(c.b); got != c.want {
			t.Errorf("IsSFlow(% x) = %v", c.b, got)
		}
	}
}

// TestDecodePmacctd decodes what pmacctd's sfprobe plugin sent while it
// watched a veth: every flow sample holds an IP packet between the two
// ends (an ICMP error about one, or IPv6 neighbour discovery), sampled 1
// in 1.
func TestDecodePmacctd(t *testing.T) {
	var d Datagram
	a, b := mustAddr("198.18.50.1"), mustAddr("198.18.50.2")
	a6, b6 := mustAddr("fd00:50::1"), mustAddr("fd00:50::2")
	var recs, counterSamples int
	protos := map[uint8]int{}
	for i, dg := range wiretest.ReadHexLines(t, "testdata/pmacctd.hex") {
		if err := Decode(&d, dg, t0); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if d.Agent != a || d.SubAgent != 7 || d.Sequence != uint32(i+1) {
			t.Errorf("datagram %d: agent %v sub-agent %d sequence %d", i, d.Agent, d.SubAgent, d.Sequence)
		}
		if d.NotIP != 0 || d.SkippedSamples != 0 {
			t.Errorf("datagram %d: %d samples not IP, %d skipped", i, d.NotIP, d.SkippedSamples)
		}
		if len(d.Flows) == 0 {
			counterSamples++
		}
		for _, r := range d.Records {
			// Neighbour discovery goes to multicast addresses.
			ends := (r.Src == a && r.Dst == b) || (r.Src == b && r.Dst == a) || (r.Src == a6 || r.Src == b6) && (r.Dst == a6 || r.Dst == b6 || r.Dst.IsMulticast())
			if !ends || r.SamplingInterval != 1 || r.Packets != 1 || r.Octets < 20 {
				t.Errorf("datagram %d: record %+v", i, r)
			}
			protos[r.Proto]++
			recs++
		}
	}
	if recs < 20 || protos[flow.ProtoTCP] == 0 || protos[flow.ProtoUDP] == 0 || protos[flow.ProtoICMP] == 0 || protos[flow.ProtoICMPv6] == 0 || counterSamples != 1 {
		t.Errorf("%d records by protocol %v, %d counter-only datagrams", recs, protos, counterSamples)
	}
}

// TestHostile cuts and corrupts the datagrams: every prefix, every
// length field made huge, counts made huge. The decoder must return an
// error (or a shorter result), never panic, and keep only whole samples.
func TestHostile(t *testing.T) {
	dgs, _ := crafted()
	dgs = append(dgs, wiretest.ReadHexLines(t, "testdata/pmacctd.hex")...)
	var d Datagram
	for i, dg := range dgs {
		if err := Decode(&d, dg, t0); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		whole := len(d.Records)
		for n := range len(dg) {
			err := Decode(&d, dg[:n], t0)
			if err == nil {
				t.Errorf("datagram %d cut to %d octets: no error", i, n)
				continue
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) || !(errors.Is(err, wire.ErrTruncated) || errors.Is(err, wire.ErrLength)) {
				t.Errorf("datagram %d cut to %d: %v is not a truncation", i, n, err)
			}
			if len(d.Records) > whole {
				t.Errorf("datagram %d cut to %d: %d records, whole has %d", i, n, len(d.Records), whole)
			}
		}
		for off := 0; off+4 <= len(dg); off += 4 {
			for _, v := range []uint32{0xffffffff, 0x7fffffff, 0xfffffffc, 0} {
				c := append([]byte(nil), dg...)
				u32(c[:off], v)
				_ = Decode(&d, c, t0) // must not panic
				if len(d.Records) > len(c)/8 {
					t.Errorf("datagram %d, %#x at %d: %d records from %d octets", i, v, off, len(d.Records), len(c))
				}
			}
		}
	}
	if err := Decode(&d, u32(nil, 4, 1, 0), t0); !errors.Is(err, wire.ErrVersion) {
		t.Errorf("version 4: %v", err)
	}
	if err := Decode(&d, u32(nil, 5, 3, 0), t0); err == nil {
		t.Errorf("address type 3: no error")
	}
}

func FuzzDecode(f *testing.F) {
	dgs, _ := crafted()
	for _, b := range dgs {
		f.Add(b)
	}
	for _, b := range wiretest.ReadHexLines(f, "testdata/pmacctd.hex") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Datagram
		err := Decode(&d, b, t0)
		if err != nil {
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
		}
		if len(d.Records) > len(d.Flows) || len(d.Flows)+len(d.Counters) > len(b)/8 {
			t.Fatalf("%d records, %d flow samples, %d counters from %d octets", len(d.Records), len(d.Flows), len(d.Counters), len(b))
		}
		for _, r := range d.Records {
			if r.Packets != 1 || !r.Src.IsValid() || r.Src.Is4() != r.Dst.Is4() {
				t.Fatalf("record %+v", r)
			}
		}
	})
}

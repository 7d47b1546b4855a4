// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The mix's ground truth must be what an independent reader of the pcap
// counts: decode every frame with gopacket and key it as a probe would.
func TestMixTruthMatchesPcap(t *testing.T) {
	var buf bytes.Buffer
	cfg := MixConfig{Seed: 1, TCPConns: 20, UDPFlows: 30, ICMPFlows: 10}
	truth, st, err := GenerateMix(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := Truth{}
	packets, runts, tcpFlags := 0, 0, map[Key]uint8{}
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		packets++
		if len(data) < 60 {
			runts++
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		// Errors past the transport layer are gopacket guessing at
		// payloads (UDP 4789 as VXLAN): the headers below must decode.
		var k Key
		var l3 uint64
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			k.Src, _ = netip.AddrFromSlice(ip.SrcIP)
			k.Dst, _ = netip.AddrFromSlice(ip.DstIP)
			k.Proto, l3 = uint8(ip.Protocol), uint64(ip.Length)
		case *layers.IPv6:
			k.Src, _ = netip.AddrFromSlice(ip.SrcIP)
			k.Dst, _ = netip.AddrFromSlice(ip.DstIP)
			k.Proto, l3 = uint8(ip.NextHeader), 40+uint64(ip.Length)
		default:
			t.Fatalf("frame %d: no IP layer", packets)
		}
		if uint64(len(data)) != 14+l3 {
			t.Fatalf("frame %d: %d bytes, IP says %d: padded", packets, len(data), 14+l3)
		}
		switch l := pkt.TransportLayer().(type) {
		case *layers.TCP:
			k.SrcPort, k.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
			if l.SYN {
				tcpFlags[k] |= 1
			}
			if l.FIN || l.RST {
				tcpFlags[k] |= 2
			}
		case *layers.UDP:
			k.SrcPort, k.DstPort = uint16(l.SrcPort), uint16(l.DstPort)
		default:
			if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
				k.DstPort = uint16(ic.TypeCode)
			} else if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
				k.DstPort = uint16(ic.TypeCode)
			} else {
				t.Fatalf("frame %d: no transport layer", packets)
			}
		}
		if phaseOf(k.Src) != phaseMix {
			t.Fatalf("frame %d: source %s outside the mix's prefixes", packets, k.Src)
		}
		got.Add(k, 1, l3)
	}
	if packets != st.Packets || runts != st.Runts {
		t.Errorf("pcap holds %d packets, %d runts; stats say %d, %d", packets, runts, st.Packets, st.Runts)
	}
	if runts == 0 {
		t.Error("no frame shorter than 60 bytes")
	}
	if m := Compare(truth, got, true); !m.Exact() {
		t.Errorf("truth differs from the pcap: %+v", m)
	}
	// Every TCP connection opens with a SYN each way and ends with a FIN
	// or an RST.
	for k, f := range tcpFlags {
		rev := Key{Src: k.Dst, Dst: k.Src, Proto: k.Proto, SrcPort: k.DstPort, DstPort: k.SrcPort}
		if f&1 == 0 || (f|tcpFlags[rev])&2 == 0 {
			t.Errorf("%v: SYN/FIN-or-RST bits %b, reverse %b", k, f, tcpFlags[rev])
		}
	}
	wantFlows := 2*cfg.TCPConns*2 + 2*cfg.UDPFlows + 2*cfg.ICMPFlows*2
	if len(truth) != wantFlows {
		t.Errorf("%d flows, want %d", len(truth), wantFlows)
	}

	// Same seed, same bytes.
	var again bytes.Buffer
	if _, _, err := GenerateMix(&again, cfg); err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	_, _, _ = GenerateMix(&first, cfg)
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("the mix is not deterministic")
	}
}

func TestSplitTruth(t *testing.T) {
	// 10 frames over 4 flows from frame 3: frame i goes to port 100+i%4.
	tr := splitTruth(xdpgenSrc, xdpgenDst, 100, 4, 3, 10)
	want := map[uint16]uint64{}
	for i := 3; i < 13; i++ {
		want[uint16(100+i%4)]++
	}
	for k, c := range tr {
		if c.Packets != want[k.SrcPort] || c.Bytes != c.Packets*loadL3Len {
			t.Errorf("port %d: %+v, want %d packets", k.SrcPort, c, want[k.SrcPort])
		}
	}
	if tot := tr.Total(); tot.Packets != 10 {
		t.Errorf("total %d packets, want 10", tot.Packets)
	}
}

func TestCompare(t *testing.T) {
	a := netip.MustParseAddr("198.18.240.1")
	b := netip.MustParseAddr("198.19.240.1")
	want := Truth{}
	want.Add(Key{Src: a, Dst: b, Proto: 17, SrcPort: 1, DstPort: 2}, 3, 300)
	want.Add(Key{Src: b, Dst: a, Proto: 17, SrcPort: 2, DstPort: 1}, 1, 100)
	if m := Compare(want, want, true); !m.Exact() || m.MissingPackets != 0 {
		t.Errorf("identical: %+v", m)
	}
	got := Truth{}
	got.Add(Key{Src: a, Dst: b, Proto: 17, SrcPort: 1, DstPort: 2}, 2, 200)
	got.Add(Key{Src: a, Dst: b, Proto: 6, SrcPort: 1, DstPort: 2}, 1, 100)
	m := Compare(want, got, true)
	if m.Exact() || m.ExactFlows != 0 || m.ExtraFlows != 1 || m.MissingPackets != 1 {
		t.Errorf("differing: %+v", m)
	}
}

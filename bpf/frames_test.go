// SPDX-License-Identifier: Apache-2.0

package bpf

// Frame builders for the BPF_PROG_TEST_RUN tests, on top of gopacket. The
// expected octets in the tests are written out as sums of header sizes
// (20 + 8 + 100), never read back from the frames these helpers build.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Test addresses: the benchmarking range and ULA space only.
var (
	macA = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	macB = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}

	v4A = netip.MustParseAddr("198.18.0.1")
	v4B = netip.MustParseAddr("198.19.255.2")
	v6A = netip.MustParseAddr("fd00::1")
	v6B = netip.MustParseAddr("fd00:0:0:ffff::2")
)

// IPv6 extension header numbers (the datapath walks these).
const (
	extHop      = 0
	extRouting  = 43
	extFragment = 44
	extAuth     = 51
	extDest     = 60
)

// frame serializes layers with lengths fixed and checksums computed. The
// transport layers' checksums use the last IP layer before them.
func frame(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	var nl gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			nl = l
		case *layers.IPv6:
			nl = l
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(nl)
		case *layers.ICMPv6:
			_ = l.SetNetworkLayerForChecksum(nl)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize frame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ether(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: t}
}

func eth4() *layers.Ethernet { return ether(layers.EthernetTypeIPv4) }
func eth6() *layers.Ethernet { return ether(layers.EthernetTypeIPv6) }

// dot1q is one VLAN tag; pcp and dei are set to show they are not keyed.
func dot1q(vid uint16, next layers.EthernetType) *layers.Dot1Q {
	return &layers.Dot1Q{VLANIdentifier: vid, Priority: 5, DropEligible: true, Type: next}
}

func ip4(proto layers.IPProtocol, ttl, tos uint8) *layers.IPv4 {
	return &layers.IPv4{
		Version: 4, TTL: ttl, TOS: tos, Protocol: proto, Id: 0x1234,
		SrcIP: v4A.AsSlice(), DstIP: v4B.AsSlice(),
	}
}

// ip6 builds an IPv6 header; next is the first header after it.
func ip6(next uint8, hop, tclass uint8) *layers.IPv6 {
	return &layers.IPv6{
		Version: 6, HopLimit: hop, TrafficClass: tclass, FlowLabel: 0xbeef5,
		NextHeader: layers.IPProtocol(next),
		SrcIP:      v6A.AsSlice(), DstIP: v6B.AsSlice(),
	}
}

func udp(sp, dp uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
}

// tcp builds a TCP header. flags selects TCP flags by their bits: the
// flags byte (byte 13) and NS as bit 8 (the low bit of byte 12), as the
// datapath reports them.
func tcp(sp, dp uint16, flags uint16) *layers.TCP {
	return &layers.TCP{
		SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp),
		Seq: 1, Ack: 1, Window: 1024,
		FIN: flags&0x01 != 0, SYN: flags&0x02 != 0, RST: flags&0x04 != 0,
		PSH: flags&0x08 != 0, ACK: flags&0x10 != 0, URG: flags&0x20 != 0,
		ECE: flags&0x40 != 0, CWR: flags&0x80 != 0, NS: flags&0x100 != 0,
	}
}

// TCP flag bits as kflow reports them.
const (
	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
	fURG = 0x20
	fECE = 0x40
	fCWR = 0x80
	fNS  = 0x100
)

// tcpTS is a TCP header with 12 bytes of options (NOP, NOP, timestamps):
// a 32-byte header, like most Linux TCP segments.
func tcpTS(sp, dp uint16, flags uint16) *layers.TCP {
	t := tcp(sp, dp, flags)
	t.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}},
	}
	return t
}

func icmp4(typ, code uint8) *layers.ICMPv4 {
	return &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: 7, Seq: 1}
}

func icmp6(typ, code uint8) *layers.ICMPv6 {
	return &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)}
}

func payload(n int) gopacket.Payload {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// ext6 is a hop-by-hop, routing or destination options header of
// (units+1)*8 bytes, filled with a PadN option (or an empty type 4 routing
// header): the datapath reads only its next header and length fields.
func ext6(next uint8, units uint8, kind uint8) gopacket.Payload {
	b := make([]byte, (int(units)+1)*8)
	b[0], b[1] = next, units
	if kind == extRouting {
		b[2], b[3] = 4, 0 // segment routing, no segments left
	} else {
		b[2], b[3] = 1, byte(len(b)-4) // PadN
	}
	return b
}

// frag6 is an IPv6 fragment header; offset is in 8-octet units.
func frag6(next uint8, offset uint16, more bool) gopacket.Payload {
	b := make([]byte, 8)
	b[0] = next
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], 0xcafe)
	return b
}

// ah6 is an authentication header with a 12-byte ICV: 24 bytes, payload
// length field (24/4 - 2) = 4.
func ah6(next uint8) gopacket.Payload {
	b := make([]byte, 24)
	b[0], b[1] = next, 4
	binary.BigEndian.PutUint32(b[4:], 0x100) // SPI
	return b
}

// rawEth is an Ethernet header of the given type followed by body,
// without gopacket's padding to 60 bytes: for runts.
func rawEth(ethertype uint16, body ...byte) []byte {
	b := append(append([]byte(nil), macB...), macA...)
	b = binary.BigEndian.AppendUint16(b, ethertype)
	return append(b, body...)
}

// arpFrame is an ARP request: 42 bytes, padded to 60 by gopacket.
func arpFrame(tb testing.TB) []byte {
	return frame(tb, ether(layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macA, SourceProtAddress: v4A.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: v4B.AsSlice(),
	})
}

// padTo pads a frame with zeros to n bytes, as Ethernet does below 60.
func padTo(f []byte, n int) []byte {
	for len(f) < n {
		f = append(f, 0)
	}
	return f
}

// ipLen decodes a built frame's IP total length (IPv6: 40 + payload
// length), for tests that check the datapath's arithmetic against
// independently built frames.
func ipLen(tb testing.TB, f []byte) uint64 {
	tb.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if l, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		return uint64(l.Length)
	}
	if l, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		return 40 + uint64(l.Length)
	}
	tb.Fatalf("no IP layer in frame")
	return 0
}

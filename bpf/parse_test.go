// SPDX-License-Identifier: Apache-2.0

package bpf

// The parsers under BPF_PROG_TEST_RUN: every frame of a case is run once
// through a program, the datapath is drained, and the records (identity,
// counters, flags, TOS, TTLs) and unkeyed counters are compared exactly.
// The table runs through every hook's program (TCX and legacy TC, ingress
// and egress, XDP) in both value modes. Contexts the kernel lets a test
// set (ifindex, gso_segs, gso_size; XDP's ingress_ifindex) have their own
// tests; a VLAN tag in skb metadata, which PROG_TEST_RUN cannot set, is
// covered with real frames on a veth pair in a throwaway namespace.

import (
	"errors"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// v4rec is the record of an IPv4 flow from v4A to v4B seen on ingress of
// ifindex 1 (BPF_PROG_TEST_RUN's default device is the loopback).
func v4rec(proto uint8, sp, dp uint16, pkts, octets uint64, ttl uint8) flow.Record {
	return flow.Record{
		Src: v4A, Dst: v4B, Proto: proto, SrcPort: sp, DstPort: dp,
		InIf: 1, Direction: flow.Ingress,
		Packets: pkts, Octets: octets, MinTTL: ttl, MaxTTL: ttl,
	}
}

// v6rec is v4rec for an IPv6 flow from v6A to v6B.
func v6rec(proto uint8, sp, dp uint16, pkts, octets uint64, hop uint8) flow.Record {
	r := v4rec(proto, sp, dp, pkts, octets, hop)
	r.Src, r.Dst = v6A, v6B
	return r
}

func with(r flow.Record, f func(r *flow.Record)) flow.Record {
	f(&r)
	return r
}

func icmpRec(r flow.Record, typ, code uint8) flow.Record {
	r.ICMPType, r.ICMPCode = typ, code
	return r
}

func vlanRec(r flow.Record, outer, inner uint16) flow.Record {
	r.VLAN, r.InnerVLAN = outer, inner
	return r
}

// cut returns the first n bytes of a frame.
func cut(f []byte, n int) []byte { return f[:n:n] }

// patch returns a copy of a frame with byte i set to v.
func patch(f []byte, kv ...int) []byte {
	out := append([]byte(nil), f...)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = byte(kv[i+1])
	}
	return out
}

type parseCase struct {
	name    string
	xdpOnly bool // the kernel's skb test run refuses the frame
	frames  [][]byte
	want    []flow.Record
	stats   Stats
}

func parseCases(tb testing.TB) []parseCase {
	const (
		pUDP    = 17
		pTCP    = 6
		pICMP   = 1
		pICMPv6 = 58
		pSCTP   = 132
		pGRE    = 47
	)
	udp4 := func(ttl, tos uint8, n int) []byte {
		return frame(tb, eth4(), ip4(layers.IPProtocolUDP, ttl, tos), udp(40000, 53), payload(n))
	}
	tcp4 := func(flags uint16, n int) []byte {
		return frame(tb, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(40001, 443, flags), payload(n))
	}
	udp6 := func(hop, tc uint8, n int) []byte {
		return frame(tb, eth6(), ip6(pUDP, hop, tc), udp(40000, 53), payload(n))
	}
	v4opts := func(opts ...layers.IPv4Option) *layers.IPv4 {
		ip := ip4(layers.IPProtocolUDP, 64, 0)
		ip.Options = opts
		return ip
	}
	v4frag := func(proto layers.IPProtocol, flags layers.IPv4Flag, off uint16) *layers.IPv4 {
		ip := ip4(proto, 64, 0)
		ip.Flags, ip.FragOffset = flags, off
		return ip
	}
	dest := func(next uint8) gopacket.Payload { return ext6(next, 0, extDest) }
	// Unpadded frames to cut short or corrupt (all longer than 60 bytes).
	full4 := frame(tb, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(30))         // 72 bytes
	full6 := frame(tb, eth6(), ip6(pUDP, 64, 0), udp(1, 2), payload(10))                         // 72 bytes
	tcpFull := frame(tb, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(1, 2, fACK), payload(10)) // 64 bytes
	sctpFull := frame(tb, eth4(), ip4(layers.IPProtocolSCTP, 64, 0), &layers.SCTP{SrcPort: 1, DstPort: 2}, payload(20))
	icmpFull := frame(tb, eth4(), ip4(layers.IPProtocolICMPv4, 64, 0), icmp4(8, 0), payload(20))
	vlan4 := frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(10, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(30))
	vlan6 := frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(10, layers.EthernetTypeIPv6), ip6(pUDP, 64, 0), udp(1, 2), payload(10))
	hop16 := frame(tb, eth6(), ip6(extHop, 64, 0), ext6(pUDP, 1, extHop), udp(1, 2), payload(10))
	frag6Full := frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pUDP, 0, true), udp(1, 2), payload(10))
	arp42, arp60 := arpFrame(tb)[:42], arpFrame(tb)
	unparsed := func(octets uint64) Stats { return Stats{UnparsedPackets: 1, UnparsedOctets: octets} }

	return []parseCase{
		// IPv4 transports.
		{
			name:   "ipv4 udp: tos of the first packet, ttl range",
			frames: [][]byte{udp4(64, 0x28, 100), udp4(61, 0x00, 10)},
			want: []flow.Record{with(v4rec(pUDP, 40000, 53, 2, (20+8+100)+(20+8+10), 64),
				func(r *flow.Record) { r.TOS, r.MinTTL = 0x28, 61 })},
		},
		{
			name:   "ipv4 tcp flags or, with ECE CWR and NS",
			frames: [][]byte{tcp4(fSYN, 0), tcp4(fACK|fECE|fCWR, 0), tcp4(fACK|fPSH|fNS, 50)},
			want: []flow.Record{with(v4rec(pTCP, 40001, 443, 3, 40+40+(40+50), 64),
				func(r *flow.Record) { r.TCPFlags = fSYN | fACK | fECE | fCWR | fPSH | fNS })},
		},
		{
			name:   "ipv4 tcp every flag in one packet",
			frames: [][]byte{tcp4(0x1ff, 1)},
			want:   []flow.Record{with(v4rec(pTCP, 40001, 443, 1, 20+20+1, 64), func(r *flow.Record) { r.TCPFlags = 0x1ff })},
		},
		{
			name:   "ipv4 tcp no flags",
			frames: [][]byte{tcp4(0, 0)},
			want:   []flow.Record{v4rec(pTCP, 40001, 443, 1, 20+20, 64)},
		},
		{
			name:   "ipv4 sctp",
			frames: [][]byte{frame(tb, eth4(), ip4(layers.IPProtocolSCTP, 64, 0), &layers.SCTP{SrcPort: 5000, DstPort: 5001, VerificationTag: 9}, payload(16))},
			want:   []flow.Record{v4rec(pSCTP, 5000, 5001, 1, 20+12+16, 64)},
		},
		{
			name:   "ipv4 icmp echo request",
			frames: [][]byte{frame(tb, eth4(), ip4(layers.IPProtocolICMPv4, 64, 0), icmp4(8, 0), payload(56))},
			want:   []flow.Record{icmpRec(v4rec(pICMP, 0, 0, 1, 20+8+56, 64), 8, 0)},
		},
		{
			name: "ipv4 icmp port unreachable",
			frames: [][]byte{frame(tb, eth4(), ip4(layers.IPProtocolICMPv4, 64, 0), icmp4(3, 3),
				ip4(layers.IPProtocolUDP, 64, 0), udp(53, 40000))},
			want: []flow.Record{icmpRec(v4rec(pICMP, 0, 0, 1, 20+8+20+8, 64), 3, 3)},
		},
		{
			name:   "ipv4 gre has no ports",
			frames: [][]byte{frame(tb, eth4(), ip4(layers.IPProtocolGRE, 64, 0), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, payload(20))},
			want:   []flow.Record{v4rec(pGRE, 0, 0, 1, 20+4+20, 64)},
		},
		{
			name: "ipv4 options (IHL 6)",
			frames: [][]byte{frame(tb, eth4(), v4opts(layers.IPv4Option{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}),
				udp(7000, 7001), payload(10))},
			want: []flow.Record{v4rec(pUDP, 7000, 7001, 1, 24+8+10, 64)},
		},
		{
			name: "ipv4 options (IHL 15)",
			frames: [][]byte{frame(tb, eth4(), v4opts(layers.IPv4Option{OptionType: 7, OptionLength: 39, OptionData: append([]byte{4}, make([]byte, 36)...)}),
				udp(7000, 7001), payload(10))},
			want: []flow.Record{v4rec(pUDP, 7000, 7001, 1, 60+8+10, 64)},
		},
		{
			name: "ipv4 fragments: first has ports, the others are keyed without",
			frames: [][]byte{
				frame(tb, eth4(), v4frag(layers.IPProtocolUDP, layers.IPv4MoreFragments, 0), udp(8000, 8001), payload(32)),
				frame(tb, eth4(), v4frag(layers.IPProtocolUDP, layers.IPv4MoreFragments, 5), payload(40)),
				frame(tb, eth4(), v4frag(layers.IPProtocolUDP, 0, 10), payload(20)),
			},
			want: []flow.Record{
				v4rec(pUDP, 8000, 8001, 1, 20+8+32, 64),
				v4rec(pUDP, 0, 0, 2, (20+40)+(20+20), 64),
			},
		},
		{
			name: "ipv4 icmp non-first fragment has no type",
			frames: [][]byte{
				frame(tb, eth4(), v4frag(layers.IPProtocolICMPv4, layers.IPv4MoreFragments, 0), icmp4(8, 0), payload(16)),
				frame(tb, eth4(), v4frag(layers.IPProtocolICMPv4, 0, 3), payload(16)),
			},
			want: []flow.Record{
				icmpRec(v4rec(pICMP, 0, 0, 1, 20+8+16, 64), 8, 0),
				v4rec(pICMP, 0, 0, 1, 20+16, 64),
			},
		},
		{
			name:   "ipv4 in an ethernet frame padded to 60 bytes",
			frames: [][]byte{padTo(frame(tb, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2)), 60)},
			want:   []flow.Record{v4rec(pUDP, 1, 2, 1, 20+8, 64)},
		},

		// IPv6.
		{
			name:   "ipv6 udp: traffic class of the first packet, hop limit range",
			frames: [][]byte{udp6(64, 0xb8, 100), udp6(50, 0, 10)},
			want: []flow.Record{with(v6rec(pUDP, 40000, 53, 2, (40+8+100)+(40+8+10), 64),
				func(r *flow.Record) { r.TOS, r.MinTTL = 0xb8, 50 })},
		},
		{
			name: "ipv6 tcp flags",
			frames: [][]byte{
				frame(tb, eth6(), ip6(pTCP, 64, 0), tcp(40001, 443, fSYN|fECE|fCWR)),
				frame(tb, eth6(), ip6(pTCP, 64, 0), tcp(40001, 443, fACK|fNS), payload(7)),
			},
			want: []flow.Record{with(v6rec(pTCP, 40001, 443, 2, (40+20)+(40+20+7), 64),
				func(r *flow.Record) { r.TCPFlags = fSYN | fECE | fCWR | fACK | fNS })},
		},
		{
			name:   "ipv6 icmpv6 echo request",
			frames: [][]byte{frame(tb, eth6(), ip6(pICMPv6, 64, 0), icmp6(128, 0), &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, payload(56))},
			want:   []flow.Record{icmpRec(v6rec(pICMPv6, 0, 0, 1, 40+8+56, 64), 128, 0)},
		},
		{
			name:   "ipv6 hop-by-hop",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(pUDP, 0, extHop), udp(1, 2), payload(10))},
			want:   []flow.Record{v6rec(pUDP, 1, 2, 1, 40+8+8+10, 64)},
		},
		{
			name:   "ipv6 routing",
			frames: [][]byte{frame(tb, eth6(), ip6(extRouting, 64, 0), ext6(pUDP, 2, extRouting), udp(1, 2), payload(10))},
			want:   []flow.Record{v6rec(pUDP, 1, 2, 1, 40+24+8+10, 64)},
		},
		{
			name:   "ipv6 destination options",
			frames: [][]byte{frame(tb, eth6(), ip6(extDest, 64, 0), ext6(pTCP, 1, extDest), tcp(1, 2, fSYN))},
			want:   []flow.Record{with(v6rec(pTCP, 1, 2, 1, 40+16+20, 64), func(r *flow.Record) { r.TCPFlags = fSYN })},
		},
		{
			name: "ipv6 chain: hop-by-hop, dest, routing, AH, dest",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(extDest, 0, extHop), ext6(extRouting, 1, extDest),
				ext6(extAuth, 0, extRouting), ah6(extDest), dest(pUDP), udp(1, 2), payload(10))},
			want: []flow.Record{v6rec(pUDP, 1, 2, 1, 40+8+16+8+24+8+8+10, 64)},
		},
		{
			name: "ipv6 fragments: first has ports, the others are keyed without",
			frames: [][]byte{
				frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pUDP, 0, true), udp(9000, 9001), payload(32)),
				frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pUDP, 5, true), payload(40)),
				frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pUDP, 10, false), payload(24)),
			},
			want: []flow.Record{
				v6rec(pUDP, 9000, 9001, 1, 40+8+8+32, 64),
				v6rec(pUDP, 0, 0, 2, (40+8+40)+(40+8+24), 64),
			},
		},
		{
			name: "ipv6 first fragment after hop-by-hop, dest after the fragment header",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(extFragment, 0, extHop), frag6(extDest, 0, true),
				dest(pTCP), tcp(1, 2, fACK), payload(8))},
			want: []flow.Record{with(v6rec(pTCP, 1, 2, 1, 40+8+8+8+20+8, 64), func(r *flow.Record) { r.TCPFlags = fACK })},
		},
		{
			name:   "ipv6 non-first fragment after hop-by-hop: protocol from the fragment header",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(extFragment, 0, extHop), frag6(pTCP, 100, false), payload(16))},
			want:   []flow.Record{v6rec(pTCP, 0, 0, 1, 40+8+8+16, 64)},
		},
		{
			name: "ipv6 icmpv6 non-first fragment has no type",
			frames: [][]byte{frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pICMPv6, 0, true), icmp6(128, 0), payload(12)),
				frame(tb, eth6(), ip6(extFragment, 64, 0), frag6(pICMPv6, 2, false), payload(12))},
			want: []flow.Record{icmpRec(v6rec(pICMPv6, 0, 0, 1, 40+8+4+12, 64), 128, 0), v6rec(pICMPv6, 0, 0, 1, 40+8+12, 64)},
		},
		{
			// IPV6_MAX_EXT_HEADERS (6) headers are walked, so the transport
			// header after the sixth must still be read.
			name: "ipv6 six extension headers (the walk bound)",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(extDest, 0, extHop),
				dest(extDest), dest(extDest), dest(extDest), dest(extDest), dest(pUDP), udp(1, 2), payload(10))},
			want: []flow.Record{v6rec(pUDP, 1, 2, 1, 40+6*8+8+10, 64)},
		},
		{
			// Beyond the bound the flow is keyed by the header the walk
			// stopped at (the seventh extension header's type, here
			// destination options, 60), without ports, and the packet is
			// still counted with its full length.
			name: "ipv6 seven extension headers (beyond the walk bound)",
			frames: [][]byte{frame(tb, eth6(), ip6(extHop, 64, 0), ext6(extDest, 0, extHop),
				dest(extDest), dest(extDest), dest(extDest), dest(extDest), dest(extDest), dest(pUDP), udp(1, 2), payload(10))},
			want: []flow.Record{v6rec(extDest, 0, 0, 1, 40+7*8+8+10, 64)},
		},

		// VLAN tags in the frame.
		{
			name:   "802.1Q",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(100, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10))},
			want:   []flow.Record{vlanRec(v4rec(pUDP, 1, 2, 1, 20+8+10, 64), 100, 0)},
		},
		{
			name:   "802.1Q ipv6, vid 4094",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(4094, layers.EthernetTypeIPv6), ip6(pUDP, 64, 0), udp(1, 2), payload(10))},
			want:   []flow.Record{vlanRec(v6rec(pUDP, 1, 2, 1, 40+8+10, 64), 4094, 0)},
		},
		{
			name: "802.1ad + 802.1Q (QinQ)",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeQinQ), dot1q(300, layers.EthernetTypeDot1Q), dot1q(400, layers.EthernetTypeIPv4),
				ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10))},
			want: []flow.Record{vlanRec(v4rec(pUDP, 1, 2, 1, 20+8+10, 64), 300, 400)},
		},
		{
			name: "802.1Q + 802.1Q (pre-standard QinQ)",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(5, layers.EthernetTypeDot1Q), dot1q(6, layers.EthernetTypeIPv6),
				ip6(pUDP, 64, 0), udp(1, 2), payload(10))},
			want: []flow.Record{vlanRec(v6rec(pUDP, 1, 2, 1, 40+8+10, 64), 5, 6)},
		},
		{
			// Two tags are read; a third leaves a VLAN ethertype: not IP.
			name: "three tags: not IP",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeQinQ), dot1q(1, layers.EthernetTypeDot1Q), dot1q(2, layers.EthernetTypeDot1Q),
				dot1q(3, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10))},
			stats: Stats{NonIPPackets: 1, NonIPOctets: 14 + 3*4 + 20 + 8 + 10},
		},

		// Not IP, runts, truncated and malformed headers: counted by frame
		// length (skb->len, or the XDP frame) in the unkeyed counters.
		// gopacket pads frames to 60 bytes as Ethernet does; the runts are
		// built without padding. The kernel's skb test run refuses frames
		// whose outer ethertype is IPv4/IPv6 and that are shorter than the
		// IP header (TestSkbRunRejectsShortIP): those runts run through
		// XDP only, and through every hook behind an 802.1Q tag.
		{name: "arp, 42 and 60 bytes", frames: [][]byte{arp42, arp60}, stats: Stats{NonIPPackets: 2, NonIPOctets: 42 + 60}},
		{
			name:   "lldp ethertype",
			frames: [][]byte{frame(tb, ether(layers.EthernetTypeLinkLayerDiscovery), payload(46))},
			stats:  Stats{NonIPPackets: 1, NonIPOctets: 60},
		},
		{name: "14-byte frame, IPv4 ethertype", xdpOnly: true, frames: [][]byte{rawEth(0x0800)}, stats: unparsed(14)},
		{name: "14-byte frame, IPv6 ethertype", xdpOnly: true, frames: [][]byte{rawEth(0x86dd)}, stats: unparsed(14)},
		{name: "14-byte frame, 802.1Q ethertype", frames: [][]byte{rawEth(0x8100)}, stats: unparsed(14)},
		{name: "ipv4 header cut short", xdpOnly: true, frames: [][]byte{cut(full4, 14+19)}, stats: unparsed(33)},
		{name: "802.1Q, then nothing", frames: [][]byte{rawEth(0x8100, 0, 10, 0x08, 0x00)}, stats: unparsed(18)},
		{name: "802.1Q, ipv4 header cut short", frames: [][]byte{cut(vlan4, 18+19)}, stats: unparsed(37)},
		{name: "802.1Q tag cut short", frames: [][]byte{rawEth(0x8100, 0, 10)}, stats: unparsed(16)},
		{name: "802.1ad, inner tag cut short", frames: [][]byte{rawEth(0x88a8, 0, 10, 0x81, 0x00, 0)}, stats: unparsed(19)},
		{name: "ipv4 IHL < 5", frames: [][]byte{patch(full4, 14, 0x44)}, stats: unparsed(72)},
		{name: "ipv4 version 6 under the IPv4 ethertype", frames: [][]byte{patch(full4, 14, 0x65)}, stats: unparsed(72)},
		{name: "ipv4 options cut short (IHL 15 in 58 bytes)", frames: [][]byte{patch(full4, 14, 0x4f)}, stats: unparsed(72)},
		{name: "ipv4 total length < IHL", frames: [][]byte{patch(full4, 16, 0, 17, 19)}, stats: unparsed(72)},
		{name: "udp header cut short", frames: [][]byte{cut(full4, 14+20+7)}, stats: unparsed(41)},
		{name: "tcp header cut short", frames: [][]byte{cut(tcpFull, 14+20+19)}, stats: unparsed(53)},
		{name: "tcp data offset < 5", frames: [][]byte{patch(tcpFull, 14+20+12, 0x40)}, stats: unparsed(64)},
		{name: "sctp header cut short", frames: [][]byte{cut(sctpFull, 14+20+11)}, stats: unparsed(45)},
		{name: "icmp header cut short", frames: [][]byte{cut(icmpFull, 14+20+3)}, stats: unparsed(37)},
		{name: "ipv6 header cut short", xdpOnly: true, frames: [][]byte{cut(full6, 14+39)}, stats: unparsed(53)},
		{name: "802.1Q, ipv6 header cut short", frames: [][]byte{cut(vlan6, 18+39)}, stats: unparsed(57)},
		{name: "ipv6 version 4 under the IPv6 ethertype", frames: [][]byte{patch(full6, 14, 0x40)}, stats: unparsed(72)},
		{name: "ipv6 udp header cut short", frames: [][]byte{cut(full6, 14+40+7)}, stats: unparsed(61)},
		{name: "ipv6 extension header cut short", frames: [][]byte{cut(hop16, 14+40+7)}, stats: unparsed(61)},
		{name: "ipv6 extension header body cut short", frames: [][]byte{cut(hop16, 14+40+15)}, stats: unparsed(69)},
		{name: "ipv6 fragment header cut short", frames: [][]byte{cut(frag6Full, 14+40+7)}, stats: unparsed(61)},
		{
			name: "unkeyed and keyed frames together",
			frames: [][]byte{arp60, rawEth(0x8100), udp4(64, 0, 0), arp42,
				cut(vlan6, 30)},
			want:  []flow.Record{v4rec(pUDP, 40000, 53, 1, 20+8, 64)},
			stats: Stats{NonIPPackets: 2, NonIPOctets: 60 + 42, UnparsedPackets: 2, UnparsedOctets: 14 + 30},
		},
	}
}

// hookPrograms are the programs the parse table runs through, and how the
// expected records change for each: egress programs report the ifindex as
// the output interface.
var hookPrograms = []struct {
	name   string
	egress bool
}{
	{"tcx-in", false}, {"tcx-out", true}, {"tc-in", false}, {"tc-out", true}, {"xdp", false},
}

func asEgress(rs []flow.Record) []flow.Record {
	out := make([]flow.Record, len(rs))
	for i, r := range rs {
		r.Direction = flow.Egress
		r.InIf, r.OutIf = 0, r.InIf
		out[i] = r
	}
	return out
}

func TestParse(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 64, PerCPUValues: !mode.shared})
			cases := parseCases(t)
			for _, hook := range hookPrograms {
				t.Run(hook.name, func(t *testing.T) {
					prog := d.testProgram(t, hook.name)
					for _, c := range cases {
						t.Run(c.name, func(t *testing.T) {
							if c.xdpOnly && hook.name != "xdp" {
								t.Skip("BPF_PROG_TEST_RUN refuses this frame for skb programs")
							}
							// A failed case leaves nothing behind for the next one.
							t.Cleanup(func() {
								if t.Failed() {
									_, _, _ = d.Drain(nil)
								}
							})
							want := c.want
							if hook.egress {
								want = asEgress(want)
							}
							start := time.Now()
							runFrames(t, prog, nil, c.frames...)
							recs, st := drainTest(t, d)
							checkRecords(t, recs, want, start, time.Now())
							checkStats(t, st, c.stats)
						})
					}
				})
			}
		})
	}
}

// TestGSO runs a TCP frame as a GSO packet of three segments (gso_segs and
// gso_size in the __sk_buff context, ifindex of a veth in a test
// namespace). It counts three packets, and as octets the IP total lengths
// of the three segments, each built here as its own frame.
func TestGSO(t *testing.T) {
	const segs, mss = 3, 1000
	ns := newNetnsThread(t)
	skbCtx := newKernelCtx(t, "__sk_buff")
	ctx := skbCtx.set(t, "ifindex", uint32(ns.ifB)).set(t, "gso_segs", segs).set(t, "gso_size", mss).bytes()

	type gsoCase struct {
		name    string
		headers func() []gopacket.SerializableLayer
		want    flow.Record
	}
	cases := []gsoCase{
		{
			name: "ipv4 tcp with timestamps",
			headers: func() []gopacket.SerializableLayer {
				return []gopacket.SerializableLayer{eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcpTS(40000, 443, fACK|fPSH)}
			},
			want: with(v4rec(6, 40000, 443, segs, 0, 64), func(r *flow.Record) { r.TCPFlags = fACK | fPSH }),
		},
		{
			name: "vlan ipv6 destination options tcp",
			headers: func() []gopacket.SerializableLayer {
				return []gopacket.SerializableLayer{ether(layers.EthernetTypeDot1Q), dot1q(7, layers.EthernetTypeIPv6),
					ip6(extDest, 64, 0), ext6(6, 1, extDest), tcpTS(40000, 443, fACK)}
			},
			want: vlanRec(with(v6rec(6, 40000, 443, segs, 0, 64), func(r *flow.Record) { r.TCPFlags = fACK }), 7, 0),
		},
	}
	for _, mode := range valueModes {
		d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !mode.shared})
		for _, c := range cases {
			for _, hook := range []string{"tcx-in", "tcx-out", "tc-in"} {
				t.Run(mode.name+"/"+hook+"/"+c.name, func(t *testing.T) {
					gso := frame(t, append(c.headers(), payload(segs*mss))...)
					want := c.want
					for range segs {
						want.Octets += ipLen(t, frame(t, append(c.headers(), payload(mss))...))
					}
					want.InIf = uint32(ns.ifB)
					wants := []flow.Record{want}
					if hook == "tcx-out" {
						wants = asEgress(wants)
					}
					// The datapath's formula, checked against the segments.
					hdr := ipLen(t, frame(t, c.headers()...))
					if got := ipLen(t, gso) + (segs-1)*hdr; got != want.Octets {
						t.Fatalf("test arithmetic: L3 length + 2 headers = %d, segments add up to %d", got, want.Octets)
					}
					prog := d.testProgram(t, hook)
					var err error
					start := time.Now()
					ns.do(func() { err = runOnce(prog, gso, ctx) })
					if err != nil {
						t.Fatalf("run with gso context: %v", err)
					}
					recs, st := drainTest(t, d)
					checkRecords(t, recs, wants, start, time.Now())
					checkStats(t, st, Stats{})
				})
			}
		}
	}

	// gso_segs 0 and 1 are one packet, counted by its IP total length.
	t.Run("segs 0 and 1", func(t *testing.T) {
		d := loadTest(t, Config{MapEntries: 16})
		f := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcpTS(1, 2, fACK), payload(100))
		for _, n := range []uint32{0, 1} {
			ctx := newKernelCtx(t, "__sk_buff").set(t, "ifindex", uint32(ns.ifA)).set(t, "gso_segs", n).set(t, "gso_size", 100).bytes()
			var err error
			start := time.Now()
			ns.do(func() { err = runOnce(d.objs.KflowTcxIngress, f, ctx) })
			if err != nil {
				t.Fatal(err)
			}
			recs, _ := drainTest(t, d)
			want := with(v4rec(6, 1, 2, 1, 20+32+100, 64), func(r *flow.Record) { r.TCPFlags, r.InIf = fACK, uint32(ns.ifA) })
			checkRecords(t, recs, []flow.Record{want}, start, time.Now())
		}
	})
}

// TestSkbContextIfindex checks that the key's ifindex is the skb's device
// (set through the context) for each TC program.
func TestSkbContextIfindex(t *testing.T) {
	ns := newNetnsThread(t)
	d := loadTest(t, Config{MapEntries: 16})
	f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10))
	for _, hook := range hookPrograms[:4] {
		for _, ifindex := range []int{1, ns.ifA, ns.ifB} {
			ctx := newKernelCtx(t, "__sk_buff").set(t, "ifindex", uint32(ifindex)).bytes()
			var err error
			start := time.Now()
			ns.do(func() { err = runOnce(d.testProgram(t, hook.name), f, ctx) })
			if err != nil {
				t.Fatalf("%s ifindex %d: %v", hook.name, ifindex, err)
			}
			recs, _ := drainTest(t, d)
			want := []flow.Record{with(v4rec(17, 1, 2, 1, 20+8+10, 64), func(r *flow.Record) { r.InIf = uint32(ifindex) })}
			if hook.egress {
				want = asEgress(want)
			}
			checkRecords(t, recs, want, start, time.Now())
		}
	}
}

// TestXDPIngressIfindex runs the XDP program with an xdp_md context whose
// ingress_ifindex names a veth in the test namespace (PROG_TEST_RUN needs
// a real device with a registered rx queue: without a context it uses the
// loopback, ifindex 1, which the parse table covers).
func TestXDPIngressIfindex(t *testing.T) {
	ns := newNetnsThread(t)
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !mode.shared})
			frames := [][]byte{
				frame(t, ether(layers.EthernetTypeQinQ), dot1q(300, layers.EthernetTypeDot1Q), dot1q(400, layers.EthernetTypeIPv4),
					ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10)),
				padTo(frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(3, 4)), 60),
				frame(t, eth6(), ip6(extHop, 64, 0), ext6(6, 0, extHop), tcp(5, 6, fSYN), payload(1)),
				arpFrame(t),
				rawEth(0x86dd),
			}
			want := []flow.Record{
				vlanRec(v4rec(17, 1, 2, 1, 20+8+10, 64), 300, 400),
				v4rec(17, 3, 4, 1, 20+8, 64),
				with(v6rec(6, 5, 6, 1, 40+8+20+1, 64), func(r *flow.Record) { r.TCPFlags = fSYN }),
			}
			for i := range want {
				want[i].InIf = uint32(ns.ifB)
			}
			start := time.Now()
			for _, f := range frames {
				ctx := newKernelCtx(t, "xdp_md").set(t, "data_end", uint32(len(f))).set(t, "ingress_ifindex", uint32(ns.ifB)).bytes()
				var err error
				ns.do(func() { err = runOnce(d.objs.KflowXdp, f, ctx) })
				if err != nil {
					t.Fatalf("run xdp with ingress_ifindex %d: %v", ns.ifB, err)
				}
			}
			recs, st := drainTest(t, d)
			checkRecords(t, recs, want, start, time.Now())
			checkStats(t, st, Stats{NonIPPackets: 1, NonIPOctets: 60, UnparsedPackets: 1, UnparsedOctets: 14})
		})
	}
}

// TestSkbRunRejectsShortIP documents why some runts of the parse table run
// through XDP only: the kernel's skb test run refuses (EINVAL) a frame
// whose Ethernet type is IPv4 or IPv6 and that is shorter than the IP
// header, before the program runs. On a real device such a frame can
// still reach TC; the parse table covers the same truncations behind an
// 802.1Q tag, which the kernel does not look through.
func TestSkbRunRejectsShortIP(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 16})
	for _, f := range [][]byte{rawEth(0x0800), rawEth(0x0800, make([]byte, 19)...), rawEth(0x86dd, make([]byte, 39)...)} {
		if err := runOnce(d.objs.KflowTcxIngress, f, nil); !errors.Is(err, unix.EINVAL) {
			t.Errorf("%d-byte frame of type %#x: got %v, want EINVAL (if the kernel takes it now, drop xdpOnly in parseCases)",
				len(f), f[12:14], err)
		}
	}
	_, st := drainTest(t, d)
	checkStats(t, st, Stats{})
}

// TestSkbContextVLANRejected documents that BPF_PROG_TEST_RUN cannot set
// a VLAN tag in skb metadata: the kernel (convert___skb_to_skb) accepts
// only mark, priority, ingress_ifindex, ifindex, cb, tstamp, wire_len,
// gso_segs, gso_size and hwtstamp and rejects any other non-zero field.
// TestVLANMetadata covers the metadata path with real frames instead. If
// this test fails, the kernel learned to take vlan_tci: test it here.
func TestSkbContextVLANRejected(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 16})
	f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2))
	for _, field := range []string{"vlan_present", "vlan_tci", "vlan_proto"} {
		ctx := newKernelCtx(t, "__sk_buff").set(t, field, 100).bytes()
		err := runOnce(d.objs.KflowTcxIngress, f, ctx)
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("context with %s set: got %v, want EINVAL", field, err)
		}
	}
	recs, st := drainTest(t, d)
	checkRecords(t, recs, nil, time.Time{}, time.Now())
	checkStats(t, st, Stats{})
}

// TestVLANMetadata covers a VLAN tag carried in skb metadata
// (skb->vlan_present/vlan_tci), which PROG_TEST_RUN cannot set: tagged
// frames are sent with a packet socket on one end of a veth pair in a test
// namespace; the receiving end untags the outer tag into metadata before
// its TCX ingress hook, so there the outer tag comes from metadata and a
// second tag from the frame. The sending side's egress hook sees both
// tags in the frame.
func TestVLANMetadata(t *testing.T) {
	// TCX where the kernel has it, and legacy TC everywhere: the tag
	// metadata must read the same through both hooks.
	hooks := []Hook{HookTC}
	if HaveTCX() {
		hooks = append([]Hook{HookTCX}, hooks...)
	}
	for _, hook := range hooks {
		t.Run(string(hook), func(t *testing.T) { testVLANMetadata(t, hook) })
	}
}

func testVLANMetadata(t *testing.T, hook Hook) {
	ns := newNetnsThread(t)
	d := loadTest(t, Config{MapEntries: 16})
	var err error
	ns.do(func() {
		// kflow1's ingress and kflow0's egress see the frames; the other
		// two directions see nothing.
		for _, ifname := range []string{"kflow1", "kflow0"} {
			if _, err = d.Attach(ifname, hook); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("attach %s in the test namespace: %v", hook, err)
	}

	frames := [][]byte{
		frame(t, ether(layers.EthernetTypeDot1Q), dot1q(100, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10)),
		frame(t, ether(layers.EthernetTypeQinQ), dot1q(300, layers.EthernetTypeDot1Q), dot1q(400, layers.EthernetTypeIPv6),
			ip6(17, 64, 0), udp(3, 4), payload(10)),
	}
	want := []flow.Record{
		vlanRec(v4rec(17, 1, 2, 1, 20+8+10, 64), 100, 0),
		vlanRec(v6rec(17, 3, 4, 1, 40+8+10, 64), 300, 400),
	}
	for i := range want {
		want[i].InIf = uint32(ns.ifB)
	}
	for _, r := range asEgress(want) {
		r.OutIf = uint32(ns.ifA)
		want = append(want, r)
	}

	start := time.Now()
	ns.do(func() {
		var fd int
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		for _, f := range frames {
			sa := &unix.SockaddrLinklayer{Ifindex: ns.ifA, Halen: 6}
			copy(sa.Addr[:], macB)
			if err = unix.Sendto(fd, f, 0, sa); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("send tagged frames on the veth: %v", err)
	}
	// The peer receives from a backlog: drain until everything arrived
	// (however late; Patience only bounds a hang), then compare the
	// merged records.
	var recs []flow.Record
	var st Stats
	for deadline := time.Now().Add(testenv.Patience); ; {
		r, s := drainTest(t, d)
		recs = append(recs, r...)
		st.NonIPPackets += s.NonIPPackets
		st.UnparsedPackets += s.UnparsedPackets
		if len(recs) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkRecords(t, recs, want, start, time.Now())
	checkStats(t, st, Stats{})
}

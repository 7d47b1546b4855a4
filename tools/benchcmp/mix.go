// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The correctness mix: a deterministic pcap of TCP connections (SYN..FIN,
// some ended by RST), UDP flows and ICMP echo exchanges over IPv4 and
// IPv6, with frames from 54 bytes (shorter than Ethernet's 60-byte
// minimum: a veth does not pad) up to 1514. Every packet is built here, so
// the ground truth is known by construction.

// Frames are addressed to a MAC the observing end does not own: they are
// counted by every probe, then dropped by the receiving stack (PACKET_OTHERHOST)
// without provoking any reply that would add traffic to the ground truth.
var (
	genSrcMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0xbc, 0x00, 0x01}
	genDstMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0xbc, 0x00, 0x02}
)

// Address plan. Each traffic phase has its own source prefix, so the
// flows a probe reports are told apart by phase.
var (
	mixClient4 = netip.MustParseAddr("198.18.240.0")
	mixServer4 = netip.MustParseAddr("198.19.240.0")
	mixClient6 = netip.MustParseAddr("fd00:bc:1::")
	mixServer6 = netip.MustParseAddr("fd00:bc:2::")
	mixPrefix4 = []netip.Prefix{netip.MustParsePrefix("198.18.240.0/20"), netip.MustParsePrefix("198.19.240.0/20")}
	mixPrefix6 = netip.MustParsePrefix("fd00:bc::/32")
)

// MixConfig sizes the mix.
type MixConfig struct {
	Seed      uint64
	TCPConns  int // per IP version
	UDPFlows  int // per IP version
	ICMPFlows int // echo exchanges per IP version
}

// MixStats describes a generated mix.
type MixStats struct {
	Packets, Runts int // runts: frames shorter than 60 bytes
	MinFrame       int
	MaxFrame       int
}

type mixPacket struct {
	key   Key
	frame []byte
}

// nthAddr returns base + n in its last byte(s).
func nthAddr(base netip.Addr, n int) netip.Addr {
	b := base.AsSlice()
	b[len(b)-1] = byte(1 + n%250)
	b[len(b)-2] += byte(n / 250)
	a, _ := netip.AddrFromSlice(b)
	return a
}

// GenerateMix writes the mix as a pcap to w and returns its ground truth.
func GenerateMix(w io.Writer, cfg MixConfig) (Truth, MixStats, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b666c6f77))
	var streams [][]mixPacket
	for _, v6 := range []bool{false, true} {
		for i := range cfg.TCPConns {
			s, err := tcpConn(rng, v6, i)
			if err != nil {
				return nil, MixStats{}, err
			}
			streams = append(streams, s)
		}
		for i := range cfg.UDPFlows {
			s, err := udpFlow(rng, v6, i)
			if err != nil {
				return nil, MixStats{}, err
			}
			streams = append(streams, s)
		}
		for i := range cfg.ICMPFlows {
			s, err := icmpExchange(rng, v6, i)
			if err != nil {
				return nil, MixStats{}, err
			}
			streams = append(streams, s)
		}
	}

	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, MixStats{}, err
	}
	truth := Truth{}
	st := MixStats{MinFrame: 1 << 30}
	ts := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Interleave the streams: each step takes the next packet of a
	// randomly chosen stream, so flows overlap in time as on a real link
	// while each keeps its own order.
	for len(streams) > 0 {
		i := rng.IntN(len(streams))
		p := streams[i][0]
		if streams[i] = streams[i][1:]; len(streams[i]) == 0 {
			streams[i] = streams[len(streams)-1]
			streams = streams[:len(streams)-1]
		}
		ts = ts.Add(100 * time.Microsecond)
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p.frame), Length: len(p.frame)}, p.frame); err != nil {
			return nil, MixStats{}, err
		}
		truth.Add(p.key, 1, uint64(len(p.frame)-14)) // no padding: L3 = frame - Ethernet header
		st.Packets++
		if len(p.frame) < 60 {
			st.Runts++
		}
		st.MinFrame = min(st.MinFrame, len(p.frame))
		st.MaxFrame = max(st.MaxFrame, len(p.frame))
	}
	return truth, st, nil
}

// serialize builds a frame and cuts gopacket's Ethernet padding off:
// frames stay as short as their IP packet, as a veth carries them.
func serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	var l3 int
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		l3 = int(binary.BigEndian.Uint16(b[16:]))
	case 0x86dd:
		l3 = 40 + int(binary.BigEndian.Uint16(b[18:]))
	default:
		return nil, fmt.Errorf("serialize: ethertype %#x", binary.BigEndian.Uint16(b[12:]))
	}
	if 14+l3 > len(b) {
		return nil, fmt.Errorf("serialize: IP length %d past the frame's %d bytes", l3, len(b))
	}
	return append([]byte(nil), b[:14+l3]...), nil
}

// ipLayers returns the Ethernet and IP layers of a packet from src to dst.
func ipLayers(src, dst netip.Addr, proto layers.IPProtocol) (*layers.Ethernet, gopacket.NetworkLayer, gopacket.SerializableLayer) {
	eth := &layers.Ethernet{SrcMAC: genSrcMAC, DstMAC: genDstMAC, EthernetType: layers.EthernetTypeIPv4}
	if src.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		return eth, ip, ip
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
	return eth, ip, ip
}

func endpoints(v6 bool, i int) (client, server netip.Addr) {
	if v6 {
		return nthAddr(mixClient6, i), nthAddr(mixServer6, i%8)
	}
	return nthAddr(mixClient4, i), nthAddr(mixServer4, i%8)
}

var tcpPorts = []uint16{80, 443, 22, 25, 8080, 5432}

// tcpConn is one connection: handshake, a few request/response rounds
// (responses cut in MSS-sized segments, ACKed every second segment), then
// FIN from both sides, or an RST from the server for one in eight.
func tcpConn(rng *rand.Rand, v6 bool, i int) ([]mixPacket, error) {
	client, server := endpoints(v6, i)
	cport, sport := uint16(20000+i), tcpPorts[i%len(tcpPorts)]
	mss := 1460
	if v6 {
		mss = 1440
	}
	cseq, sseq := rng.Uint32(), rng.Uint32()
	var out []mixPacket
	var err error
	seg := func(fromClient bool, flags string, payload int) {
		if err != nil {
			return
		}
		src, dst, sp, dp, seq, ack := client, server, cport, sport, cseq, sseq
		if !fromClient {
			src, dst, sp, dp, seq, ack = server, client, sport, cport, sseq, cseq
		}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, Window: 65535}
		for _, f := range flags {
			switch f {
			case 'S':
				tcp.SYN = true
			case 'A':
				tcp.ACK = true
			case 'P':
				tcp.PSH = true
			case 'F':
				tcp.FIN = true
			case 'R':
				tcp.RST = true
			}
		}
		if !tcp.ACK {
			tcp.Ack = 0
		}
		eth, nl, ip := ipLayers(src, dst, layers.IPProtocolTCP)
		_ = tcp.SetNetworkLayerForChecksum(nl)
		var frame []byte
		frame, err = serialize(eth, ip, tcp, gopacket.Payload(make([]byte, payload)))
		adv := uint32(payload)
		if tcp.SYN || tcp.FIN {
			adv++
		}
		if fromClient {
			cseq += adv
		} else {
			sseq += adv
		}
		out = append(out, mixPacket{key: Key{Src: src, Dst: dst, Proto: 6, SrcPort: sp, DstPort: dp}, frame: frame})
	}
	seg(true, "S", 0)
	seg(false, "SA", 0)
	seg(true, "A", 0)
	for range 1 + rng.IntN(3) {
		seg(true, "PA", 1+rng.IntN(600))
		resp := rng.IntN(12000)
		for n := 0; resp > 0; n++ {
			l := min(resp, mss)
			resp -= l
			seg(false, "PA", l)
			if n%2 == 1 || resp == 0 {
				seg(true, "A", 0)
			}
		}
	}
	if i%8 == 7 {
		seg(false, "RA", 0)
	} else {
		seg(true, "FA", 0)
		seg(false, "FA", 0)
		seg(true, "A", 0)
	}
	return out, err
}

// udpSizes are UDP payload sizes: 0 and 4 make frames shorter than 60
// bytes over IPv4, 1472 (1452 over IPv6) fills a 1514-byte frame.
var udpSizes = []int{0, 4, 18, 100, 512, 1000, 1200, 1472}

func udpFlow(rng *rand.Rand, v6 bool, i int) ([]mixPacket, error) {
	client, server := endpoints(v6, i)
	sp, dp := uint16(30000+i), uint16([]int{53, 123, 514, 4789, 9999}[i%5])
	key := Key{Src: client, Dst: server, Proto: 17, SrcPort: sp, DstPort: dp}
	var out []mixPacket
	for range 1 + rng.IntN(24) {
		size := udpSizes[rng.IntN(len(udpSizes))]
		if v6 {
			size = min(size, 1452)
		}
		eth, nl, ip := ipLayers(client, server, layers.IPProtocolUDP)
		udp := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
		_ = udp.SetNetworkLayerForChecksum(nl)
		frame, err := serialize(eth, ip, udp, gopacket.Payload(make([]byte, size)))
		if err != nil {
			return nil, err
		}
		out = append(out, mixPacket{key: key, frame: frame})
	}
	return out, nil
}

// icmpExchange is a run of echo requests from client to server, each
// answered: two flows (request and reply type).
func icmpExchange(rng *rand.Rand, v6 bool, i int) ([]mixPacket, error) {
	client, server := endpoints(v6, i)
	req, rep, proto := uint8(8), uint8(0), uint8(1)
	lproto := layers.IPProtocolICMPv4
	if v6 {
		req, rep, proto, lproto = 128, 129, 58, layers.IPProtocolICMPv6
	}
	size := []int{0, 16, 56, 1000}[i%4]
	var out []mixPacket
	for seq := range 1 + rng.IntN(6) {
		for _, dir := range []bool{true, false} {
			src, dst, typ := client, server, req
			if !dir {
				src, dst, typ = server, client, rep
			}
			eth, nl, ip := ipLayers(src, dst, lproto)
			payload := gopacket.Payload(make([]byte, size))
			var frame []byte
			var err error
			if v6 {
				icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
				_ = icmp.SetNetworkLayerForChecksum(nl)
				echo := &layers.ICMPv6Echo{Identifier: uint16(i), SeqNumber: uint16(seq)}
				frame, err = serialize(eth, ip, icmp, echo, payload)
			} else {
				icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: uint16(i), Seq: uint16(seq)}
				frame, err = serialize(eth, ip, icmp, payload)
			}
			if err != nil {
				return nil, fmt.Errorf("icmp frame: %w", err)
			}
			out = append(out, mixPacket{key: Key{Src: src, Dst: dst, Proto: proto, DstPort: uint16(typ) << 8}, frame: frame})
		}
	}
	return out, nil
}

// phaseOf names the traffic phase a flow belongs to, by its source.
func phaseOf(src netip.Addr) string {
	switch {
	case src.Is6() && mixPrefix6.Contains(src):
		return phaseMix
	case mixPrefix4[0].Contains(src) || mixPrefix4[1].Contains(src):
		return phaseMix
	case trafgenPrefix.Contains(src):
		return phaseTrafgen
	case xdpgenPrefix.Contains(src):
		return phaseXDPGen
	}
	return "other"
}

// SPDX-License-Identifier: Apache-2.0

package sflow

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Header protocols of a raw packet header record.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
)

// EtherTypes.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	etherQinQ2 = 0x9100 // pre-standard 802.1ad
)

const (
	maxVLANTags   = 2 // as kflow's datapath: an 802.1ad outer and an 802.1Q inner tag
	maxIPv6Ext    = 8 // IPv6 extension headers walked before giving up on ports
	ethHeaderLen  = 14
	vlanTagLen    = 4
	ipv4MinHeader = 20
	ipv6Header    = 40
)

// packet is what a flow sample's records say about its packet.
type packet struct {
	r                flow.Record
	vlanFromHeader   bool
	srcVLAN, dstVLAN uint32
	nextHop          netip.Addr
	srcMask, dstMask uint32
	srcAS, dstAS     uint32
}

// record returns the flow record of the packet.
func (p *packet) record(now time.Time) flow.Record {
	r := p.r
	r.Packets = 1
	r.Start, r.End = now, now
	if !p.vlanFromHeader && p.srcVLAN > 0 && p.srcVLAN < 4096 {
		r.VLAN = uint16(p.srcVLAN)
	}
	if p.nextHop.Is4() == r.Src.Is4() {
		r.NextHop = p.nextHop
	}
	if p.srcMask <= 128 && p.dstMask <= 128 {
		r.SrcMask, r.DstMask = uint8(p.srcMask), uint8(p.dstMask)
	}
	r.SrcAS, r.DstAS = p.srcAS, p.dstAS
	return r
}

// parseHeader reads the sampled header of a raw packet header record and
// reports whether it holds an IPv4 or IPv6 packet. frameLen and stripped
// give the IP length when the IP header's own length field cannot (an
// IPv6 jumbogram, a zero IPv4 total length from segmentation offload).
func (p *packet) parseHeader(proto uint32, h []byte, frameLen, stripped uint32) bool {
	l2 := 0
	switch proto {
	case headerEthernet:
		if len(h) < ethHeaderLen {
			return false
		}
		et := binary.BigEndian.Uint16(h[12:])
		l2 = ethHeaderLen
		for tags := 0; (et == etherVLAN || et == etherQinQ || et == etherQinQ2) && tags < maxVLANTags; tags++ {
			if len(h) < l2+vlanTagLen {
				return false
			}
			id := binary.BigEndian.Uint16(h[l2:]) & 0x0fff
			if tags == 0 {
				p.r.VLAN = id
			} else {
				p.r.InnerVLAN = id
			}
			p.vlanFromHeader = true
			et = binary.BigEndian.Uint16(h[l2+2:])
			l2 += vlanTagLen
		}
		switch et {
		case etherIPv4, etherIPv6:
		default:
			return false
		}
	case headerIPv4, headerIPv6:
	default:
		return false
	}
	// The IP packet's length when its header cannot tell: the frame less
	// what the agent stripped (the FCS) and the link-layer header.
	fallback := uint64(0)
	if s := uint64(stripped) + uint64(l2); uint64(frameLen) > s {
		fallback = uint64(frameLen) - s
	}
	return p.parseIP(h[l2:], fallback)
}

// parseIP reads an IPv4 or IPv6 header and the transport header after it.
func (p *packet) parseIP(b []byte, fallback uint64) bool {
	if len(b) < 1 {
		return false
	}
	r := &p.r
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < ipv4MinHeader || ihl < ipv4MinHeader {
			return false
		}
		r.TOS = b[1]
		r.Octets = uint64(binary.BigEndian.Uint16(b[2:]))
		if r.Octets == 0 {
			r.Octets = fallback
		}
		r.MinTTL, r.MaxTTL = b[8], b[8]
		r.Proto = b[9]
		r.Src = netip.AddrFrom4([4]byte(b[12:16]))
		r.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 || len(b) < ihl {
			return true // a later fragment (or options cut short): no transport header
		}
		p.transport(b[ihl:])
		return true
	case 6:
		if len(b) < ipv6Header {
			return false
		}
		r.TOS = b[0]<<4 | b[1]>>4
		r.Octets = uint64(binary.BigEndian.Uint16(b[4:])) + ipv6Header
		if r.Octets == ipv6Header && fallback > ipv6Header {
			r.Octets = fallback // a jumbogram's payload length is 0
		}
		r.MinTTL, r.MaxTTL = b[7], b[7]
		r.Src = netip.AddrFrom16([16]byte(b[8:24]))
		r.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[ipv6Header:]
		for range maxIPv6Ext {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					r.Proto = next
					return true
				}
				n := (int(rest[1]) + 1) * 8
				next = rest[0]
				if len(rest) < n {
					r.Proto = next
					return true
				}
				rest = rest[n:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					r.Proto = next
					return true
				}
				next = rest[0]
				r.Proto = next
				if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
					return true // a later fragment
				}
				rest = rest[8:]
				continue
			case 51: // authentication header
				if len(rest) < 8 {
					r.Proto = next
					return true
				}
				n := (int(rest[1]) + 2) * 4
				next = rest[0]
				if len(rest) < n {
					r.Proto = next
					return true
				}
				rest = rest[n:]
				continue
			}
			break
		}
		r.Proto = next
		p.transport(rest)
		return true
	}
	return false
}

// transport reads ports, ICMP type and code, or TCP flags: what the
// header holds of them (a header cut short leaves them zero).
func (p *packet) transport(b []byte) {
	r := &p.r
	switch r.Proto {
	case flow.ProtoTCP:
		if len(b) >= 14 {
			r.TCPFlags = uint16(b[12]&0x01)<<8 | uint16(b[13])
		}
		fallthrough
	case flow.ProtoUDP, flow.ProtoSCTP, 136: // 136: UDP-Lite
		if len(b) >= 4 {
			r.SrcPort = binary.BigEndian.Uint16(b)
			r.DstPort = binary.BigEndian.Uint16(b[2:])
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(b) >= 2 {
			r.ICMPType, r.ICMPCode = b[0], b[1]
		}
	}
}

// parseSampledIP reads a sampled IPv4 or IPv6 record (formats 3 and 4):
// what an agent sends that does not send the header itself. Its length
// is the IP packet's.
func (p *packet) parseSampledIP(rec *reader, v6 bool) bool {
	r := &p.r
	r.Octets = uint64(rec.u32())
	proto := rec.u32()
	if v6 {
		src, dst := rec.bytes(16, "IPv6 address"), rec.bytes(16, "IPv6 address")
		if rec.err != nil {
			return false
		}
		r.Src, r.Dst = netip.AddrFrom16([16]byte(src)), netip.AddrFrom16([16]byte(dst))
	} else {
		src, dst := rec.bytes(4, "IPv4 address"), rec.bytes(4, "IPv4 address")
		if rec.err != nil {
			return false
		}
		r.Src, r.Dst = netip.AddrFrom4([4]byte(src)), netip.AddrFrom4([4]byte(dst))
	}
	sport, dport, flags, tos := rec.u32(), rec.u32(), rec.u32(), rec.u32()
	if rec.err != nil || proto > 255 {
		return false
	}
	r.Proto = uint8(proto)
	switch r.Proto {
	case flow.ProtoICMP, flow.ProtoICMPv6:
		// The ports of an ICMP packet hold its type and code.
		r.ICMPType, r.ICMPCode = uint8(sport), uint8(dport)
	default:
		r.SrcPort, r.DstPort = uint16(sport), uint16(dport)
	}
	if r.Proto == flow.ProtoTCP {
		r.TCPFlags = uint16(flags & 0x1ff)
	}
	r.TOS = uint8(tos)
	return true
}

// gateway reads an extended gateway record (1003): the source AS, and
// the destination AS as the last of the AS path (the router's own AS when
// the path is empty).
func (p *packet) gateway(rec *reader) {
	rec.addr() // BGP next hop
	own := rec.u32()
	p.srcAS = rec.u32()
	rec.u32() // source peer AS
	p.dstAS = own
	segments := rec.u32()
	for i := uint32(0); i < segments && rec.err == nil; i++ {
		rec.u32() // segment type: set or sequence
		n := rec.u32()
		if uint64(n)*4 > uint64(len(rec.b)) {
			rec.fail(errASPath)
			return
		}
		for j := uint32(0); j < n; j++ {
			p.dstAS = rec.u32()
		}
	}
	// Communities and local preference follow; nothing kflow stores.
}

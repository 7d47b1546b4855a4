// SPDX-License-Identifier: Apache-2.0

package flow

import (
	"strconv"
	"strings"
)

// Values derived from a record's fields, defined once: every view (nfdump
// formats, JSON, filters, statistics, the web page) uses these.

// DurationMs is End − Start in whole milliseconds; 0 without both times or
// when End is before Start.
func (r *Record) DurationMs() uint64 {
	if r.Start.IsZero() || r.End.IsZero() || r.End.Before(r.Start) {
		return 0
	}
	return uint64(r.End.Sub(r.Start).Milliseconds())
}

// PPS is packets per second over the duration, as nfdump computes it: an
// integer, 0 for a flow of no duration.
func (r *Record) PPS() uint64 { return Rate(r.Packets, r.DurationMs()) }

// BPS is bits per second over the duration (0 for no duration).
func (r *Record) BPS() uint64 { return Rate(8*r.Octets, r.DurationMs()) }

// BPP is bytes per packet (0 without packets).
func (r *Record) BPP() uint64 { return PerPacket(r.Octets, r.Packets) }

// Rate is v per second over ms milliseconds, 0 when ms is 0, computed as
// nfdump does, in floating point over the duration in seconds and
// truncated: 21 packets over 42 ms is 499 (21 / 0.042 is a hair under 500
// in binary floating point), where exact arithmetic says 500. Users
// compare kflow's numbers with nfdump's digit for digit.
func Rate(v, ms uint64) uint64 {
	if ms == 0 {
		return 0
	}
	return uint64(float64(v) / (float64(ms) / 1000.0))
}

// PerPacket is octets / packets, 0 without packets.
func PerPacket(octets, packets uint64) uint64 {
	if packets == 0 {
		return 0
	}
	return octets / packets
}

// NfDstPort is the destination port as nfdump shows, filters and counts
// it: for ICMP and ICMPv6 without a port, type*256 + code.
func (r *Record) NfDstPort() uint16 {
	if r.DstPort == 0 && r.IsICMP() {
		return r.ICMPTypeCode()
	}
	return r.DstPort
}

// ProtoName is the record's protocol as nfdump prints it.
func (r *Record) ProtoName() string { return ProtoName(r.Proto) }

// protoNames are the names nfdump prints for the common protocols.
var protoNames = map[uint8]string{
	ProtoICMP: "ICMP", 2: "IGMP", 4: "IPIP", ProtoTCP: "TCP", ProtoUDP: "UDP", 41: "IPv6", 47: "GRE",
	50: "ESP", 51: "AH", ProtoICMPv6: "ICMP6", 89: "OSPF", 103: "PIM", ProtoSCTP: "SCTP",
}

// protoNumbers are the names accepted for protocols (filters, statistics):
// nfdump's and the IANA keywords.
var protoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41, "rsvp": 46,
	"gre": 47, "esp": 50, "ah": 51, "icmp6": 58, "icmpv6": 58, "ipv6-icmp": 58, "eigrp": 88, "ospf": 89,
	"pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
}

// ProtoName names protocol p as nfdump prints it, or its number.
func ProtoName(p uint8) string {
	if s, ok := protoNames[p]; ok {
		return s
	}
	return strconv.Itoa(int(p))
}

// ProtoNumber returns the number of a protocol name (case-insensitive).
func ProtoNumber(name string) (uint8, bool) {
	v, ok := protoNumbers[strings.ToLower(name)]
	return v, ok
}

// TCPFlagsString prints TCP flags as nfdump does: "CEUAPRSF" with a dot for
// each bit not set.
func TCPFlagsString(f uint16) string {
	b := []byte("........")
	for i, c := range "CEUAPRSF" {
		if f&(0x80>>i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}

// icmpPairs maps ICMP and ICMPv6 request types to their reply types and
// back: echo, timestamp, information, address mask; ICMPv6 echo and node
// information.
var icmpPairs = [2]map[uint8]uint8{
	{8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17},
	{128: 129, 129: 128, 139: 140, 140: 139},
}

// ICMPReplyType returns the type of the message that answers (or that is
// answered by) ICMP (proto 1) or ICMPv6 (58) type typ, and false for the
// types that are not part of a request and reply.
func ICMPReplyType(proto, typ uint8) (uint8, bool) {
	m := icmpPairs[0]
	if proto == ProtoICMPv6 {
		m = icmpPairs[1]
	}
	t, ok := m[typ]
	return t, ok
}

// ICMPIsRequest reports whether ICMP (proto 1) or ICMPv6 (58) type typ is
// a request that a reply answers.
func ICMPIsRequest(proto, typ uint8) bool {
	if proto == ProtoICMPv6 {
		return typ == 128 || typ == 139
	}
	return typ == 8 || typ == 13 || typ == 15 || typ == 17
}

// SPDX-License-Identifier: Apache-2.0

// Package flow holds the flow record model shared by the exporter's cache,
// the wire encoders and decoders, and the collector's flow files.
package flow

import (
	"net/netip"
	"time"
)

// Direction is the IPFIX flowDirection (IE 61): 0 ingress, 1 egress.
type Direction uint8

const (
	Ingress Direction = 0
	Egress  Direction = 1
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "unknown"
}

// EndReason is the IPFIX flowEndReason (IE 136).
type EndReason uint8

const (
	EndUnknown         EndReason = 0
	EndIdle            EndReason = 1 // idle timeout
	EndActive          EndReason = 2 // active timeout
	EndOfFlow          EndReason = 3 // end of flow detected (TCP FIN/RST)
	EndForced          EndReason = 4 // forced end (shutdown)
	EndLackOfResources EndReason = 5 // cache full
)

func (r EndReason) String() string {
	switch r {
	case EndIdle:
		return "idle"
	case EndActive:
		return "active"
	case EndOfFlow:
		return "end-of-flow"
	case EndForced:
		return "forced"
	case EndLackOfResources:
		return "lack-of-resources"
	}
	return "unknown"
}

// TCP control bits as carried in IPFIX tcpControlBits (IE 6), including the
// ECN-nonce (NS), CWR and ECE bits.
const (
	TCPFin uint16 = 0x001
	TCPSyn uint16 = 0x002
	TCPRst uint16 = 0x004
	TCPPsh uint16 = 0x008
	TCPAck uint16 = 0x010
	TCPUrg uint16 = 0x020
	TCPEce uint16 = 0x040
	TCPCwr uint16 = 0x080
	TCPNs  uint16 = 0x100
)

// TCPSynNoAck is not a TCP header bit: kflow's datapath marks a flow one
// of whose packets was a SYN without ACK (it opened a connection). Only
// the exporter's biflow cache sees it, to tell the initiator of a
// connection, and it clears it: records never carry it out.
const TCPSynNoAck uint16 = 0x200

// Well-known protocol numbers.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
	ProtoSCTP   uint8 = 132
)

// Record is one flow record: what an exporter sends and a collector stores.
// Counters are deltas since the flow's previous record.
type Record struct {
	// Flow identity.
	Src, Dst           netip.Addr // both IPv4 or both IPv6 (never 4-in-6)
	SrcPort, DstPort   uint16     // zero for protocols without ports
	Proto              uint8
	ICMPType, ICMPCode uint8 // for ICMP and ICMPv6; ports are zero then
	VLAN               uint16
	InnerVLAN          uint16 // customer VLAN id of an 802.1ad frame
	InIf, OutIf        uint32 // ingressInterface (IE 10), egressInterface (IE 14)
	Direction          Direction

	// Counters and timing.
	Packets, Octets uint64 // octets are L3 octets (IP total length)
	Start, End      time.Time
	TCPFlags        uint16
	TOS             uint8
	MinTTL, MaxTTL  uint8
	EndReason       EndReason

	// Fields other exporters send; kflow's own exporter leaves them zero.
	NextHop          netip.Addr
	SrcAS, DstAS     uint32
	SrcMask, DstMask uint8
	SamplingInterval uint32 // 0 or 1: unsampled

	// The local socket's control group, for the traffic of a host's own
	// sockets (kflow's exporter, see cgroup.go): CgroupID is the cgroup
	// v2 id on the exporting host (the cgroup directory's inode number),
	// Cgroup its path below the cgroup v2 root ("/system.slice/nginx.service").
	// Both zero for forwarded traffic and other exporters' records.
	CgroupID uint64
	Cgroup   string

	// Set by the collector: who sent the record.
	Exporter          netip.Addr
	ObservationDomain uint32

	// Ident is the ident of the collector (or of its source, nfcapd's -I
	// and -n) that wrote the file the record was read from. It is the
	// file's, not stored per record: the query engine sets it when a
	// question tests or counts it (filter "ident", statistic "ident").
	Ident string
}

// IPVersion returns 4 or 6, or 0 when the record has no valid address.
func (r *Record) IPVersion() uint8 {
	switch {
	case r.Src.Is4():
		return 4
	case r.Src.Is6():
		return 6
	}
	return 0
}

// ICMPTypeCode returns the ICMP type and code packed as IPFIX IEs 32 and 139
// and NetFlow carry them: type*256 + code.
func (r *Record) ICMPTypeCode() uint16 {
	return uint16(r.ICMPType)<<8 | uint16(r.ICMPCode)
}

// IsICMP reports whether the record's protocol is ICMP or ICMPv6.
func (r *Record) IsICMP() bool {
	return r.Proto == ProtoICMP || r.Proto == ProtoICMPv6
}

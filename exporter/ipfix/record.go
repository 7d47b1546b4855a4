// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// Flow data records are written field by field with fixed offsets rather
// than by a wire.PutField call per field: the templates never change, and
// the generic path spent most of its time looking up elements and looping
// over octets. The layout below must follow flowFields field for field;
// TestFlowRecordMatchesPutField checks it against wire.PutField.

// Record sizes of the flow templates.
const (
	flow4Len = 32 + 2*4 + flowTailLen // 67
	flow6Len = 32 + 2*16 + flowTailLen
)

// putFlow4 writes r as a record of the IPv4 flow template into b, which
// holds flow4Len octets.
func putFlow4(b []byte, r *flow.Record) {
	b = b[:flow4Len]
	putFlowHead(b, r)
	wire.PutIPv4(b[32:36], r.Src)
	wire.PutIPv4(b[36:40], r.Dst)
	putFlowTail(b[40:], r)
}

// putFlow6 writes r as a record of the IPv6 flow template into b, which
// holds flow6Len octets.
func putFlow6(b []byte, r *flow.Record) {
	b = b[:flow6Len]
	putFlowHead(b, r)
	wire.PutIPv6(b[32:48], r.Src)
	wire.PutIPv6(b[48:64], r.Dst)
	putFlowTail(b[64:], r)
}

// putFlowHead writes the 32 octets before the addresses.
func putFlowHead(b []byte, r *flow.Record) {
	_ = b[31]
	binary.BigEndian.PutUint64(b[0:], uint64(wire.UnixMilli(r.Start))) // flowStartMilliseconds
	binary.BigEndian.PutUint64(b[8:], uint64(wire.UnixMilli(r.End)))   // flowEndMilliseconds
	binary.BigEndian.PutUint64(b[16:], r.Octets)                       // octetDeltaCount
	binary.BigEndian.PutUint64(b[24:], r.Packets)                      // packetDeltaCount
}

// flowTailLen is the length of the fields after the addresses.
const flowTailLen = 27

// putFlowTail writes the fields after the addresses.
func putFlowTail(b []byte, r *flow.Record) {
	_ = b[flowTailLen-1]
	binary.BigEndian.PutUint32(b[0:], r.InIf)            // ingressInterface
	binary.BigEndian.PutUint32(b[4:], r.OutIf)           // egressInterface
	binary.BigEndian.PutUint16(b[8:], r.SrcPort)         // sourceTransportPort
	binary.BigEndian.PutUint16(b[10:], r.DstPort)        // destinationTransportPort
	binary.BigEndian.PutUint16(b[12:], r.ICMPTypeCode()) // icmpTypeCodeIPv4/IPv6
	binary.BigEndian.PutUint16(b[14:], r.TCPFlags)       // tcpControlBits
	binary.BigEndian.PutUint16(b[16:], r.VLAN)           // vlanId
	binary.BigEndian.PutUint16(b[18:], r.InnerVLAN)      // dot1qCustomerVlanId
	b[20] = r.Proto                                      // protocolIdentifier
	b[21] = r.TOS                                        // ipClassOfService
	b[22] = r.MinTTL                                     // minimumTTL
	b[23] = r.MaxTTL                                     // maximumTTL
	b[24] = r.IPVersion()                                // ipVersion
	b[25] = byte(r.Direction)                            // flowDirection
	b[26] = byte(r.EndReason)                            // flowEndReason
}

// revLen is the length of the reverse fields of a biflow record.
const revLen = 37

// Record sizes of the biflow templates.
const (
	biflow4Len = flow4Len + revLen
	biflow6Len = flow6Len + revLen
)

// putReverse writes the responder's fields of a biflow record (the
// layout of reverseFields).
func putReverse(b []byte, r *flow.Record) {
	_ = b[revLen-1]
	binary.BigEndian.PutUint64(b[0:], uint64(wire.UnixMilli(r.Start))) // reverseFlowStartMilliseconds
	binary.BigEndian.PutUint64(b[8:], uint64(wire.UnixMilli(r.End)))   // reverseFlowEndMilliseconds
	binary.BigEndian.PutUint64(b[16:], r.Octets)                       // reverseOctetDeltaCount
	binary.BigEndian.PutUint64(b[24:], r.Packets)                      // reversePacketDeltaCount
	binary.BigEndian.PutUint16(b[32:], r.TCPFlags)                     // reverseTcpControlBits
	b[34] = r.TOS                                                      // reverseIpClassOfService
	b[35] = r.MinTTL                                                   // reverseMinimumTTL
	b[36] = r.MaxTTL                                                   // reverseMaximumTTL
}

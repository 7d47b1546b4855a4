// SPDX-License-Identifier: Apache-2.0

package netflow9

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
	flow4Len = 24 + 2*4 + flowTailLen // 57
	flow6Len = 24 + 2*16 + flowTailLen
)

// putFlow4 writes r as a record of the IPv4 flow template into b, which
// holds flow4Len octets. initMs is the unix time in ms of sysUptime 0.
func putFlow4(b []byte, r *flow.Record, initMs int64) {
	b = b[:flow4Len]
	putFlowHead(b, r, initMs)
	wire.PutIPv4(b[24:28], r.Src)
	wire.PutIPv4(b[28:32], r.Dst)
	putFlowTail(b[32:], r)
}

// putFlow6 writes r as a record of the IPv6 flow template into b, which
// holds flow6Len octets.
func putFlow6(b []byte, r *flow.Record, initMs int64) {
	b = b[:flow6Len]
	putFlowHead(b, r, initMs)
	wire.PutIPv6(b[24:40], r.Src)
	wire.PutIPv6(b[40:56], r.Dst)
	putFlowTail(b[56:], r)
}

// putFlowHead writes the 24 octets before the addresses.
func putFlowHead(b []byte, r *flow.Record, initMs int64) {
	_ = b[23]
	// FIRST_SWITCHED and LAST_SWITCHED: sysUptime in ms, wrapping at 2^32.
	binary.BigEndian.PutUint32(b[0:], uint32(wire.UnixMilli(r.Start)-initMs))
	binary.BigEndian.PutUint32(b[4:], uint32(wire.UnixMilli(r.End)-initMs))
	binary.BigEndian.PutUint64(b[8:], r.Octets)   // IN_BYTES
	binary.BigEndian.PutUint64(b[16:], r.Packets) // IN_PKTS
}

// flowTailLen is the length of the fields after the addresses.
const flowTailLen = 25

// putFlowTail writes the fields after the addresses.
func putFlowTail(b []byte, r *flow.Record) {
	_ = b[flowTailLen-1]
	binary.BigEndian.PutUint32(b[0:], r.InIf)            // INPUT_SNMP
	binary.BigEndian.PutUint32(b[4:], r.OutIf)           // OUTPUT_SNMP
	binary.BigEndian.PutUint16(b[8:], r.SrcPort)         // L4_SRC_PORT
	binary.BigEndian.PutUint16(b[10:], r.DstPort)        // L4_DST_PORT
	binary.BigEndian.PutUint16(b[12:], r.ICMPTypeCode()) // ICMP_TYPE
	binary.BigEndian.PutUint16(b[14:], r.VLAN)           // SRC_VLAN
	b[16] = r.Proto                                      // PROTOCOL
	b[17] = r.TOS                                        // SRC_TOS
	b[18] = byte(r.TCPFlags)                             // TCP_FLAGS: one octet, NS does not fit
	b[19] = r.MinTTL                                     // MIN_TTL
	b[20] = r.MaxTTL                                     // MAX_TTL
	b[21] = r.IPVersion()                                // IP_PROTOCOL_VERSION
	b[22] = byte(r.Direction)                            // DIRECTION
	binary.BigEndian.PutUint16(b[23:], r.InnerVLAN)      // dot1qCustomerVlanId (IPFIX 245)
}

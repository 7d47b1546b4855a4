// SPDX-License-Identifier: Apache-2.0

package netflow5

import "github.com/kflow-dev/kflow/exporter/wire"

// recordFields describes the fixed 48-octet v5 flow record as a template,
// so that the shared decoder reads it. Pad octets use field id 0, which
// decodes to nothing.
func recordFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IESourceIPv4Address, Length: 4},           // srcaddr
		{ID: wire.IEDestinationIPv4Address, Length: 4},      // dstaddr
		{ID: wire.IEIPNextHopIPv4Address, Length: 4},        // nexthop
		{ID: wire.IEIngressInterface, Length: 2},            // input: SNMP index of input interface
		{ID: wire.IEEgressInterface, Length: 2},             // output
		{ID: wire.IEPacketDeltaCount, Length: 4},            // dPkts: packets in the flow
		{ID: wire.IEOctetDeltaCount, Length: 4},             // dOctets: total layer 3 octets
		{ID: wire.IEFlowStartSysUpTime, Length: 4},          // First: sysUptime at start of flow
		{ID: wire.IEFlowEndSysUpTime, Length: 4},            // Last: sysUptime at the last packet
		{ID: wire.IESourceTransportPort, Length: 2},         // srcport
		{ID: wire.IEDestinationTransportPort, Length: 2},    // dstport (ICMP: type*256+code)
		{ID: 0, Length: 1},                                  // pad1
		{ID: wire.IETCPControlBits, Length: 1},              // tcp_flags: cumulative OR
		{ID: wire.IEProtocolIdentifier, Length: 1},          // prot
		{ID: wire.IEIPClassOfService, Length: 1},            // tos
		{ID: wire.IEBGPSourceASNumber, Length: 2},           // src_as
		{ID: wire.IEBGPDestinationASNumber, Length: 2},      // dst_as
		{ID: wire.IESourceIPv4PrefixLength, Length: 1},      // src_mask
		{ID: wire.IEDestinationIPv4PrefixLength, Length: 1}, // dst_mask
		{ID: 0, Length: 2},                                  // pad2
	}
}

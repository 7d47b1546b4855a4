// SPDX-License-Identifier: Apache-2.0

// Package wire holds what the template-based flow formats (IPFIX and
// NetFlow v9) share: field specifiers, the bounded template store of a
// decoding session, field value encoding and decoding to flow.Record, options
// data, message packing, template refresh and typed decode errors.
//
// NetFlow v9 field type numbers below 128 are the IPFIX information element
// numbers with the same meaning, so one table of numbers serves both.
package wire

// Information element identifiers (IANA IPFIX registry; the same numbers are
// the NetFlow v9 field types where v9 defines them).
const (
	IEOctetDeltaCount              uint16 = 1   // v9 IN_BYTES
	IEPacketDeltaCount             uint16 = 2   // v9 IN_PKTS
	IEProtocolIdentifier           uint16 = 4   // v9 PROTOCOL
	IEIPClassOfService             uint16 = 5   // v9 SRC_TOS
	IETCPControlBits               uint16 = 6   // v9 TCP_FLAGS
	IESourceTransportPort          uint16 = 7   // v9 L4_SRC_PORT
	IESourceIPv4Address            uint16 = 8   // v9 IPV4_SRC_ADDR
	IESourceIPv4PrefixLength       uint16 = 9   // v9 SRC_MASK
	IEIngressInterface             uint16 = 10  // v9 INPUT_SNMP
	IEDestinationTransportPort     uint16 = 11  // v9 L4_DST_PORT
	IEDestinationIPv4Address       uint16 = 12  // v9 IPV4_DST_ADDR
	IEDestinationIPv4PrefixLength  uint16 = 13  // v9 DST_MASK
	IEEgressInterface              uint16 = 14  // v9 OUTPUT_SNMP
	IEIPNextHopIPv4Address         uint16 = 15  // v9 IPV4_NEXT_HOP
	IEBGPSourceASNumber            uint16 = 16  // v9 SRC_AS
	IEBGPDestinationASNumber       uint16 = 17  // v9 DST_AS
	IEBGPNextHopIPv4Address        uint16 = 18  // v9 BGP_IPV4_NEXT_HOP
	IEFlowEndSysUpTime             uint16 = 21  // v9 LAST_SWITCHED
	IEFlowStartSysUpTime           uint16 = 22  // v9 FIRST_SWITCHED
	IESourceIPv6Address            uint16 = 27  // v9 IPV6_SRC_ADDR
	IEDestinationIPv6Address       uint16 = 28  // v9 IPV6_DST_ADDR
	IESourceIPv6PrefixLength       uint16 = 29  // v9 IPV6_SRC_MASK
	IEDestinationIPv6PrefixLength  uint16 = 30  // v9 IPV6_DST_MASK
	IEICMPTypeCodeIPv4             uint16 = 32  // v9 ICMP_TYPE (type*256+code)
	IESamplingInterval             uint16 = 34  // v9 SAMPLING_INTERVAL
	IESamplingAlgorithm            uint16 = 35  // v9 SAMPLING_ALGORITHM
	IEExportedOctetTotalCount      uint16 = 40  // v9 TOTAL_BYTES_EXP
	IEExportedMessageTotalCount    uint16 = 41  // v9 TOTAL_PKTS_EXP
	IEExportedFlowRecordTotalCount uint16 = 42  // v9 TOTAL_FLOWS_EXP
	IESamplerID                    uint16 = 48  // v9 FLOW_SAMPLER_ID
	IESamplerMode                  uint16 = 49  // v9 FLOW_SAMPLER_MODE
	IESamplerRandomInterval        uint16 = 50  // v9 FLOW_SAMPLER_RANDOM_INTERVAL
	IEMinimumTTL                   uint16 = 52  // v9 MIN_TTL
	IEMaximumTTL                   uint16 = 53  // v9 MAX_TTL
	IEVlanID                       uint16 = 58  // v9 SRC_VLAN
	IEPostVlanID                   uint16 = 59  // v9 DST_VLAN
	IEIPVersion                    uint16 = 60  // v9 IP_PROTOCOL_VERSION
	IEFlowDirection                uint16 = 61  // v9 DIRECTION
	IEIPNextHopIPv6Address         uint16 = 62  // v9 IPV6_NEXT_HOP
	IEBGPNextHopIPv6Address        uint16 = 63  // v9 BPG_IPV6_NEXT_HOP
	IEInterfaceName                uint16 = 82  // v9 IF_NAME
	IEApplicationDescription       uint16 = 94  // v9 APPLICATION_DESCRIPTION
	IEApplicationID                uint16 = 95  // v9 APPLICATION_TAG (RFC 6759)
	IEApplicationName              uint16 = 96  // v9 APPLICATION_NAME
	IEOctetTotalCount              uint16 = 85  // v9 IN_PERMANENT_BYTES
	IEPacketTotalCount             uint16 = 86  // v9 IN_PERMANENT_PKTS
	IEFlowEndReason                uint16 = 136 //
	IEICMPTypeCodeIPv6             uint16 = 139 //
	IEExportingProcessID           uint16 = 144 //
	IEObservationDomainID          uint16 = 149 //
	IEFlowStartSeconds             uint16 = 150 //
	IEFlowEndSeconds               uint16 = 151 //
	IEFlowStartMilliseconds        uint16 = 152 //
	IEFlowEndMilliseconds          uint16 = 153 //
	IEFlowStartMicroseconds        uint16 = 154 //
	IEFlowEndMicroseconds          uint16 = 155 //
	IEFlowStartNanoseconds         uint16 = 156 //
	IEFlowEndNanoseconds           uint16 = 157 //
	IEFlowStartDeltaMicroseconds   uint16 = 158 //
	IEFlowEndDeltaMicroseconds     uint16 = 159 //
	IESystemInitTimeMilliseconds   uint16 = 160 //
	IEIgnoredPacketTotalCount      uint16 = 164 //
	IEIgnoredOctetTotalCount       uint16 = 165 //
	IEICMPTypeIPv4                 uint16 = 176 //
	IEICMPCodeIPv4                 uint16 = 177 //
	IEICMPTypeIPv6                 uint16 = 178 //
	IEICMPCodeIPv6                 uint16 = 179 //
	IEDot1qVlanID                  uint16 = 243 //
	IEDot1qCustomerVlanID          uint16 = 245 //
	IESelectorID                   uint16 = 302 //
	IESelectorAlgorithm            uint16 = 304 //
	IESamplingPacketInterval       uint16 = 305 //
	IESamplingPacketSpace          uint16 = 306 //
	IESamplingProbability          uint16 = 311 //
)

// ReversePEN is the enterprise number of the reverse information
// elements of RFC 5103: element N under it is the reverse of IANA element
// N, the value of a biflow's responder.
const ReversePEN uint32 = 29305

// kflow's applicationId (IE 95, RFC 6759) of a flow's cgroup:
// classification engine 6 ("user defined") followed by the cgroup id on
// the exporting host, 8 octets big endian. Options records of scope
// applicationId map it to applicationName (96: the short name) and
// applicationDescription (94: the cgroup path).
const (
	AppEngineUserDefined uint8 = 6
	AppIDLen                   = 9
)

// VarLen is the field length that marks an IPFIX variable-length field
// (RFC 7011 section 7).
const VarLen uint16 = 0xFFFF

// Field is one field specifier of a template record.
type Field struct {
	ID         uint16 // information element id, enterprise bit cleared
	Length     uint16 // octets, or VarLen
	Enterprise uint32 // enterprise number; 0 for IANA elements
}

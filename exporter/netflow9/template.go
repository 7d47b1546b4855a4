// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Template ids used by the encoder.
const (
	TemplateIPv4       uint16 = 256 // flow records with IPv4 addresses
	TemplateIPv6       uint16 = 257 // flow records with IPv6 addresses
	TemplateStats      uint16 = 258 // options: exporter statistics
	TemplateInterfaces uint16 = 259 // options: interface names
	TemplateSampling   uint16 = 260 // options: sampling parameters
	TemplateFiltered   uint16 = 261 // options: capture filter counts per interface
	TemplateApps       uint16 = 263 // options: cgroup APPLICATION_TAG to name and path
)

// IfNameLen is the fixed IF_NAME length in the interface options records:
// Linux's IFNAMSIZ.
const IfNameLen = 16

// flowFields returns the v9 flow template; ipv6 selects IPV6_SRC_ADDR and
// IPV6_DST_ADDR. TCP_FLAGS is one octet as RFC 3954 defines it: ECE and CWR
// fit, the NS bit does not. FIRST_SWITCHED and LAST_SWITCHED are sysUptime
// in ms at the first and last packet.
func flowFields(ipv6, cgroups bool) []wire.Field {
	fields := uniflowFields(ipv6)
	if cgroups {
		// APPLICATION_TAG (95): kflow's cgroup applicationId, as in IPFIX.
		fields = append(fields, wire.Field{ID: wire.IEApplicationID, Length: wire.AppIDLen})
	}
	return fields
}

// Fixed lengths of the names in the cgroup options records (NetFlow v9
// has no variable-length fields): longer ones are cut, shorter ones
// padded with zeros.
const (
	AppNameLen = 64
	AppDescLen = 256
)

// appFields: scope System, then APPLICATION_TAG (95), APPLICATION_NAME
// (96) and APPLICATION_DESCRIPTION (94), the form of Cisco's NBAR
// application table.
func appFields() []wire.Field {
	return []wire.Field{
		{ID: ScopeSystem, Length: 4}, // scope
		{ID: wire.IEApplicationID, Length: wire.AppIDLen},
		{ID: wire.IEApplicationName, Length: AppNameLen},
		{ID: wire.IEApplicationDescription, Length: AppDescLen},
	}
}

func uniflowFields(ipv6 bool) []wire.Field {
	src, dst, alen := wire.IESourceIPv4Address, wire.IEDestinationIPv4Address, uint16(4)
	if ipv6 {
		src, dst, alen = wire.IESourceIPv6Address, wire.IEDestinationIPv6Address, 16
	}
	return []wire.Field{
		{ID: wire.IEFlowStartSysUpTime, Length: 4}, // FIRST_SWITCHED
		{ID: wire.IEFlowEndSysUpTime, Length: 4},   // LAST_SWITCHED
		{ID: wire.IEOctetDeltaCount, Length: 8},    // IN_BYTES
		{ID: wire.IEPacketDeltaCount, Length: 8},   // IN_PKTS
		{ID: src, Length: alen},
		{ID: dst, Length: alen},
		{ID: wire.IEIngressInterface, Length: 4},         // INPUT_SNMP
		{ID: wire.IEEgressInterface, Length: 4},          // OUTPUT_SNMP
		{ID: wire.IESourceTransportPort, Length: 2},      // L4_SRC_PORT
		{ID: wire.IEDestinationTransportPort, Length: 2}, // L4_DST_PORT
		{ID: wire.IEICMPTypeCodeIPv4, Length: 2},         // ICMP_TYPE
		{ID: wire.IEVlanID, Length: 2},                   // SRC_VLAN
		{ID: wire.IEProtocolIdentifier, Length: 1},       // PROTOCOL
		{ID: wire.IEIPClassOfService, Length: 1},         // SRC_TOS
		{ID: wire.IETCPControlBits, Length: 1},           // TCP_FLAGS
		{ID: wire.IEMinimumTTL, Length: 1},               // MIN_TTL
		{ID: wire.IEMaximumTTL, Length: 1},               // MAX_TTL
		{ID: wire.IEIPVersion, Length: 1},                // IP_PROTOCOL_VERSION
		{ID: wire.IEFlowDirection, Length: 1},            // DIRECTION
		// The inner (customer) VLAN of a QinQ frame. NetFlow v9 has no
		// field for it: IPFIX's dot1qCustomerVlanId, which Wireshark and
		// kflow decode; nfdump 1.7 and nfacctd 1.7 skip it by its length.
		{ID: wire.IEDot1qCustomerVlanID, Length: 2},
	}
}

// statsFields: scope System, TOTAL_PKTS_EXP, TOTAL_FLOWS_EXP, and what v9
// lacks of IPFIX's: systemInitTimeMilliseconds (160: when the counters
// began) and the ignored counters (164, 165); collectors that do not know
// them skip them by length.
func statsFields() []wire.Field {
	return []wire.Field{
		{ID: ScopeSystem, Length: 4},
		{ID: wire.IEExportedMessageTotalCount, Length: 8},
		{ID: wire.IEExportedFlowRecordTotalCount, Length: 8},
		{ID: wire.IESystemInitTimeMilliseconds, Length: 8},
		{ID: wire.IEIgnoredPacketTotalCount, Length: 8},
		{ID: wire.IEIgnoredOctetTotalCount, Length: 8},
	}
}

func interfaceFields() []wire.Field {
	return []wire.Field{
		{ID: ScopeInterface, Length: 4},
		{ID: wire.IEInterfaceName, Length: IfNameLen},
	}
}

// samplingFields: scope System, SAMPLING_INTERVAL and SAMPLING_ALGORITHM
// (1 deterministic, 2 random; what nfacctd reads), then the IPFIX
// samplingPacketInterval/samplingPacketSpace giving the 1-in-N rate, the
// only sampling elements nfcapd 1.7 reads in NetFlow v9.
func samplingFields() []wire.Field {
	return []wire.Field{
		{ID: ScopeSystem, Length: 4},
		{ID: wire.IESamplingInterval, Length: 4},
		{ID: wire.IESamplingAlgorithm, Length: 1},
		{ID: wire.IESamplingPacketInterval, Length: 4},
		{ID: wire.IESamplingPacketSpace, Length: 4},
	}
}

// filteredFields: scope Interface, then DIRECTION and the packets and
// octets the capture filter left out (the IPFIX ignored counters, which
// v9 lacks; collectors that do not know them skip them by length).
func filteredFields() []wire.Field {
	return []wire.Field{
		{ID: ScopeInterface, Length: 4},
		{ID: wire.IEFlowDirection, Length: 1},
		{ID: wire.IEIgnoredPacketTotalCount, Length: 8},
		{ID: wire.IEIgnoredOctetTotalCount, Length: 8},
	}
}

// TemplateRecordLen is the length of t's record in a (options) template
// flowset.
func (f *format) TemplateRecordLen(t *wire.ExportTemplate) int {
	if t.Scope > 0 {
		return 6 + 4*len(t.Fields)
	}
	return 4 + 4*len(t.Fields)
}

// PutTemplateRecord writes a template record (RFC 3954 section 5.2) or an
// options template record (section 6.1: template id, option scope length
// and option length in octets, then the field specifiers).
func (f *format) PutTemplateRecord(b []byte, t *wire.ExportTemplate) {
	binary.BigEndian.PutUint16(b[0:], t.ID)
	p := 4
	if t.Scope > 0 {
		binary.BigEndian.PutUint16(b[2:], uint16(4*t.Scope))
		binary.BigEndian.PutUint16(b[4:], uint16(4*(len(t.Fields)-t.Scope)))
		p = 6
	} else {
		binary.BigEndian.PutUint16(b[2:], uint16(len(t.Fields)))
	}
	for _, f := range t.Fields {
		binary.BigEndian.PutUint16(b[p:], f.ID)
		binary.BigEndian.PutUint16(b[p+2:], f.Length)
		p += 4
	}
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

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
	TemplateSelector   uint16 = 262 // options: PSAMP selector report (sampling)
	TemplateApps       uint16 = 263 // options: cgroup applicationId to name and path
)

// SelectorID is the selectorId (IE 302) of the exporter's sampling.
const SelectorID = 1

// flowFields returns the fields of the flow templates; ipv6 selects IEs
// 27/28/139 instead of 8/12/32; biflow adds the reverse fields; cgroups
// adds applicationId (95) last: the local socket's cgroup (a biflow's
// two directions share their socket).
func flowFields(ipv6, biflow, cgroups bool) []wire.Field {
	fields := uniflowFields(ipv6)
	if biflow {
		fields = append(fields, reverseFields()...)
	}
	if cgroups {
		fields = append(fields, wire.Field{ID: wire.IEApplicationID, Length: wire.AppIDLen})
	}
	return fields
}

// appFields: scope applicationId (kflow's cgroup id), then
// applicationName (the short name: container id, else unit) and
// applicationDescription (the cgroup path), both variable length.
func appFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IEApplicationID, Length: wire.AppIDLen}, // scope
		{ID: wire.IEApplicationName, Length: wire.VarLen},
		{ID: wire.IEApplicationDescription, Length: wire.VarLen},
	}
}

func uniflowFields(ipv6 bool) []wire.Field {
	src, dst, icmp, alen := wire.IESourceIPv4Address, wire.IEDestinationIPv4Address, wire.IEICMPTypeCodeIPv4, uint16(4)
	if ipv6 {
		src, dst, icmp, alen = wire.IESourceIPv6Address, wire.IEDestinationIPv6Address, wire.IEICMPTypeCodeIPv6, 16
	}
	return []wire.Field{
		{ID: wire.IEFlowStartMilliseconds, Length: 8},
		{ID: wire.IEFlowEndMilliseconds, Length: 8},
		{ID: wire.IEOctetDeltaCount, Length: 8},
		{ID: wire.IEPacketDeltaCount, Length: 8},
		{ID: src, Length: alen},
		{ID: dst, Length: alen},
		{ID: wire.IEIngressInterface, Length: 4},
		{ID: wire.IEEgressInterface, Length: 4},
		{ID: wire.IESourceTransportPort, Length: 2},
		{ID: wire.IEDestinationTransportPort, Length: 2},
		{ID: icmp, Length: 2},
		{ID: wire.IETCPControlBits, Length: 2},
		{ID: wire.IEVlanID, Length: 2},
		{ID: wire.IEDot1qCustomerVlanID, Length: 2},
		{ID: wire.IEProtocolIdentifier, Length: 1},
		{ID: wire.IEIPClassOfService, Length: 1},
		{ID: wire.IEMinimumTTL, Length: 1},
		{ID: wire.IEMaximumTTL, Length: 1},
		{ID: wire.IEIPVersion, Length: 1},
		{ID: wire.IEFlowDirection, Length: 1},
		{ID: wire.IEFlowEndReason, Length: 1},
	}
}

// reverseFields are what a biflow record (RFC 5103) adds to the flow
// fields: the responder's counters, times, flags, TOS and TTLs as reverse
// information elements. The responder's identity is the initiator's
// reversed (addresses, ports, interfaces swapped, direction flipped).
func reverseFields() []wire.Field {
	r := func(id, n uint16) wire.Field { return wire.Field{ID: id, Length: n, Enterprise: wire.ReversePEN} }
	return []wire.Field{
		r(wire.IEFlowStartMilliseconds, 8),
		r(wire.IEFlowEndMilliseconds, 8),
		r(wire.IEOctetDeltaCount, 8),
		r(wire.IEPacketDeltaCount, 8),
		r(wire.IETCPControlBits, 2),
		r(wire.IEIPClassOfService, 1),
		r(wire.IEMinimumTTL, 1),
		r(wire.IEMaximumTTL, 1),
	}
}

// statsFields: scope observationDomainId, then the exporting process
// reliability statistics of RFC 7011 section 4.3 and the ignored counters.
func statsFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IEObservationDomainID, Length: 4}, // scope
		{ID: wire.IEExportedMessageTotalCount, Length: 8},
		{ID: wire.IEExportedFlowRecordTotalCount, Length: 8},
		{ID: wire.IESystemInitTimeMilliseconds, Length: 8},
		{ID: wire.IEIgnoredPacketTotalCount, Length: 8},
		{ID: wire.IEIgnoredOctetTotalCount, Length: 8},
	}
}

// interfaceFields: scope ingressInterface, interfaceName (variable length).
func interfaceFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IEIngressInterface, Length: 4}, // scope
		{ID: wire.IEInterfaceName, Length: wire.VarLen},
	}
}

// samplingFields: scope observationDomainId; samplingInterval and
// samplingAlgorithm (IEs 34/35: 1 deterministic, 2 random), then
// samplingPacketInterval/samplingPacketSpace giving the 1-in-N rate. This
// is the form collectors scale counters with: nfacctd reads IE 34,
// nfcapd 1.7 only 305/306 (the way it stores NetFlow v5's random mode
// itself: algorithm 2, interval 1, space N-1). The PSAMP description of
// the selection is in the selector report (selectorFields).
func samplingFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IEObservationDomainID, Length: 4}, // scope
		{ID: wire.IESamplingInterval, Length: 4},
		{ID: wire.IESamplingAlgorithm, Length: 1},
		{ID: wire.IESamplingPacketInterval, Length: 4},
		{ID: wire.IESamplingPacketSpace, Length: 4},
	}
}

// selectorFields: the PSAMP selector report of RFC 5476 section 6.5.2:
// scope selectorId, then selectorAlgorithm (RFC 5477) and its
// parameters: samplingProbability for uniform probabilistic (random)
// sampling, samplingPacketInterval/samplingPacketSpace for systematic
// count-based sampling. A separate template: nfcapd 1.7 reads no
// sampling rate from a template that holds selectorAlgorithm.
func selectorFields(random bool) []wire.Field {
	fields := []wire.Field{
		{ID: wire.IESelectorID, Length: 4}, // scope
		{ID: wire.IESelectorAlgorithm, Length: 2},
	}
	if random {
		return append(fields, wire.Field{ID: wire.IESamplingProbability, Length: 8})
	}
	return append(fields,
		wire.Field{ID: wire.IESamplingPacketInterval, Length: 4},
		wire.Field{ID: wire.IESamplingPacketSpace, Length: 4})
}

// filteredFields: scope ingressInterface and egressInterface (the one of
// the record's direction is set, the other zero), then the packets and
// octets the capture filter left out: observed, not processed into flows
// (RFC 7012's ignoredPacketTotalCount and ignoredOctetTotalCount).
func filteredFields() []wire.Field {
	return []wire.Field{
		{ID: wire.IEIngressInterface, Length: 4}, // scope
		{ID: wire.IEEgressInterface, Length: 4},  // scope
		{ID: wire.IEIgnoredPacketTotalCount, Length: 8},
		{ID: wire.IEIgnoredOctetTotalCount, Length: 8},
	}
}

// TemplateRecordLen is the length of t's record in a (options) template
// set.
func (f *format) TemplateRecordLen(t *wire.ExportTemplate) int {
	n := 4 + 4*len(t.Fields)
	if t.Scope > 0 {
		n += 2
	}
	for _, fl := range t.Fields {
		if fl.Enterprise != 0 {
			n += 4
		}
	}
	return n
}

// PutTemplateRecord writes the template record (RFC 7011 sections 3.4.1,
// 3.4.2).
func (f *format) PutTemplateRecord(b []byte, t *wire.ExportTemplate) {
	binary.BigEndian.PutUint16(b[0:], t.ID)
	binary.BigEndian.PutUint16(b[2:], uint16(len(t.Fields)))
	p := 4
	if t.Scope > 0 {
		binary.BigEndian.PutUint16(b[4:], uint16(t.Scope))
		p = 6
	}
	for _, f := range t.Fields {
		id := f.ID
		if f.Enterprise != 0 {
			id |= 0x8000 // enterprise bit: the number follows
		}
		binary.BigEndian.PutUint16(b[p:], id)
		binary.BigEndian.PutUint16(b[p+2:], f.Length)
		p += 4
		if f.Enterprise != 0 {
			binary.BigEndian.PutUint32(b[p:], f.Enterprise)
			p += 4
		}
	}
}

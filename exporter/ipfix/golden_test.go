// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// ieNames names the IEs of kflow's templates in golden file annotations.
var ieNames = map[uint16]string{
	1: "octetDeltaCount", 2: "packetDeltaCount", 4: "protocolIdentifier", 5: "ipClassOfService",
	6: "tcpControlBits", 7: "sourceTransportPort", 8: "sourceIPv4Address", 10: "ingressInterface",
	11: "destinationTransportPort", 12: "destinationIPv4Address", 14: "egressInterface",
	27: "sourceIPv6Address", 28: "destinationIPv6Address", 32: "icmpTypeCodeIPv4",
	34: "samplingInterval", 35: "samplingAlgorithm", 41: "exportedMessageTotalCount",
	42: "exportedFlowRecordTotalCount", 52: "minimumTTL", 53: "maximumTTL", 58: "vlanId",
	60: "ipVersion", 61: "flowDirection", 82: "interfaceName", 136: "flowEndReason",
	139: "icmpTypeCodeIPv6", 149: "observationDomainId", 152: "flowStartMilliseconds",
	153: "flowEndMilliseconds", 160: "systemInitTimeMilliseconds", 164: "ignoredPacketTotalCount",
	165: "ignoredOctetTotalCount", 245: "dot1qCustomerVlanId", 305: "samplingPacketInterval",
	306: "samplingPacketSpace",
}

// annotate describes every octet of an IPFIX message; s must already know
// the message's templates.
func annotate(s *Session, m []byte) []wiretest.Span {
	sp := []wiretest.Span{
		{Off: 0, Len: 2, Note: "version 10"},
		{Off: 2, Len: 2, Note: fmt.Sprintf("message length %d", binary.BigEndian.Uint16(m[2:]))},
		{Off: 4, Len: 4, Note: "export time (unix seconds)"},
		{Off: 8, Len: 4, Note: fmt.Sprintf("sequence number %d (data records sent before)", binary.BigEndian.Uint32(m[8:]))},
		{Off: 12, Len: 4, Note: fmt.Sprintf("observation domain id %d", binary.BigEndian.Uint32(m[12:]))},
	}
	domain := binary.BigEndian.Uint32(m[12:])
	for off := HeaderLen; off+4 <= len(m); {
		id := binary.BigEndian.Uint16(m[off:])
		n := int(binary.BigEndian.Uint16(m[off+2:]))
		sp = append(sp, wiretest.Span{Off: off, Len: 4, Note: fmt.Sprintf("set id %d, length %d", id, n)})
		body, base := m[off+4:off+n], off+4
		switch id {
		case SetTemplate, SetOptionsTemplate:
			for p := 0; p < len(body); {
				count := int(binary.BigEndian.Uint16(body[p+2:]))
				hl, note := 4, fmt.Sprintf("template id %d, field count %d", binary.BigEndian.Uint16(body[p:]), count)
				if id == SetOptionsTemplate {
					hl = 6
					note = fmt.Sprintf("options template id %d, field count %d, scope field count %d",
						binary.BigEndian.Uint16(body[p:]), count, binary.BigEndian.Uint16(body[p+4:]))
				}
				sp = append(sp, wiretest.Span{Off: base + p, Len: hl, Note: note})
				p += hl
				for range count {
					ie, l := binary.BigEndian.Uint16(body[p:]), binary.BigEndian.Uint16(body[p+2:])
					sp = append(sp, wiretest.Span{Off: base + p, Len: 4, Note: fmt.Sprintf("  ie %d %s, length %d", ie, ieNames[ie], l)})
					p += 4
				}
			}
		default:
			t := s.Templates().Get(domain, id)
			for p, r := 0, 0; t != nil && p < len(body); r++ {
				for i, f := range t.Fields {
					l, hl := int(f.Length), 0
					if f.Length == wire.VarLen {
						l, hl = int(body[p]), 1
					}
					note := fmt.Sprintf("record %d: %s", r, ieNames[f.ID])
					if i < t.ScopeCount {
						note += " (scope)"
					}
					if hl > 0 {
						sp = append(sp, wiretest.Span{Off: base + p, Len: 1, Note: "  variable length"})
					}
					sp = append(sp, wiretest.Span{Off: base + p + hl, Len: l, Note: note})
					p += hl + l
				}
			}
		}
		off += n
	}
	return sp
}

func TestGolden(t *testing.T) {
	clk := &fakeClock{t: t0}
	e := newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 100}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 3, Name: "eth0"}})
	e.SetIgnored(11, 2222)
	var s sink
	if _, err := e.Encode([]flow.Record{recordV4(), recordV6()}, s.emit); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1)
	if _, err := e.Encode([]flow.Record{recordV6(), recordV4()}, s.emit); err != nil {
		t.Fatal(err)
	}
	msgs := s.bytes()
	sess := NewSession(wire.Limits{})
	var spans [][]wiretest.Span
	var m Message
	for _, b := range msgs {
		if err := sess.Decode(&m, b); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, annotate(sess, b))
	}
	wiretest.Golden(t, "testdata/ipfix.golden", *update,
		"IPFIX messages of TestGolden: templates, options (stats, interface names, sampling), an IPv4 and an IPv6 record; then data only",
		msgs, spans)
}

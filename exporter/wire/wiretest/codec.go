// SPDX-License-Identifier: Apache-2.0

package wiretest

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// Helpers shared by the tests of the IPFIX and NetFlow v9 packages.

// T0 is the fixed export time of the tests.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a clock that moves only when told to.
type Clock struct{ T time.Time }

func (c *Clock) Now() time.Time          { return c.T }
func (c *Clock) Advance(d time.Duration) { c.T = c.T.Add(d) }

// RecordV4 sets every field the IPFIX templates carry, and so a few the
// NetFlow v9 templates cannot (the NS flag, EndReason).
func RecordV4() flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.1.2"),
		SrcPort: 43512, DstPort: 443, Proto: flow.ProtoTCP,
		VLAN: 100, InnerVLAN: 200, InIf: 3, OutIf: 70000, Direction: flow.Egress,
		Packets: 1<<33 + 5, Octets: 1<<40 + 7,
		Start:    T0.Add(-90*time.Second + 123*time.Millisecond),
		End:      T0.Add(-1*time.Second + 456*time.Millisecond),
		TCPFlags: flow.TCPSyn | flow.TCPAck | flow.TCPFin | flow.TCPEce | flow.TCPCwr | flow.TCPNs,
		TOS:      0xb8, MinTTL: 60, MaxTTL: 64, EndReason: flow.EndOfFlow,
	}
}

// RecordV6 is an ICMPv6 flow record.
func RecordV6() flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00:1:2:3:4:5:6:7"),
		Proto: flow.ProtoICMPv6, ICMPType: 128, ICMPCode: 3,
		VLAN: 4094, InIf: 1 << 31, OutIf: 2, Direction: flow.Ingress,
		Packets: 3, Octets: 312,
		Start: T0.Add(-10 * time.Minute),
		End:   T0.Add(-5*time.Minute + 999*time.Millisecond),
		TOS:   1, MinTTL: 1, MaxTTL: 255, EndReason: flow.EndIdle,
	}
}

// Numbered returns n records told apart by their counters; every third is
// IPv6 when mixed is set.
func Numbered(n int, mixed bool) []flow.Record {
	recs := make([]flow.Record, n)
	for i := range recs {
		if mixed && i%3 == 2 {
			recs[i] = RecordV6()
		} else {
			recs[i] = RecordV4()
		}
		recs[i].Packets = uint64(i + 1)
		recs[i].Octets = uint64(1000 * (i + 1))
	}
	return recs
}

// Sink keeps copies of the packets an encoder emits.
type Sink struct {
	Pkts []wire.Packet
}

// Emit is an emit function for Encode.
func (s *Sink) Emit(p wire.Packet) error {
	p.Bytes = bytes.Clone(p.Bytes)
	s.Pkts = append(s.Pkts, p)
	return nil
}

// Bytes returns the messages emitted so far.
func (s *Sink) Bytes() [][]byte {
	var out [][]byte
	for _, p := range s.Pkts {
		out = append(out, p.Bytes)
	}
	return out
}

// Encoder is what the IPFIX and NetFlow v9 encoders have in common.
type Encoder interface {
	Encode(recs []flow.Record, emit func(wire.Packet) error) (int, error)
	ForceTemplates()
	SetInterfaces(ifs []wire.Interface)
	SetIgnored(packets, octets uint64)
	SetFiltered(fs []wire.FilterCount)
}

// Session is a decoding session of either format seen through the
// wire.Data of its messages; H is the format's message header.
type Session[H any] interface {
	// Decode decodes a message and returns what it carried, valid until
	// the next Decode.
	Decode(b []byte) (*wire.Data, error)
	// DecodeHeld decodes a held set into the data of the last message.
	DecodeHeld(m wire.MissingSet) error
	// Header is the header of the last message.
	Header() H
	Templates() *wire.Templates
}

// DecodeAll decodes msgs in order with s and returns all records and
// options data, and the headers. A data set without template fails t.
func DecodeAll[H any](t testing.TB, s Session[H], msgs [][]byte) (wire.Data, []H) {
	t.Helper()
	var all wire.Data
	var hdrs []H
	for i, b := range msgs {
		m, err := s.Decode(b)
		if err != nil {
			t.Fatalf("decode message %d: %v", i, err)
		}
		if len(m.Missing) != 0 {
			t.Fatalf("message %d: %d data sets without template", i, len(m.Missing))
		}
		hdrs = append(hdrs, s.Header())
		all.Records = append(all.Records, m.Records...)
		all.Stats = append(all.Stats, m.Stats...)
		all.Interfaces = append(all.Interfaces, m.Interfaces...)
		all.Sampling = append(all.Sampling, m.Sampling...)
		all.Filtered = append(all.Filtered, m.Filtered...)
		all.Templates += m.Templates
	}
	return all, hdrs
}

// Annotate decodes msgs in order with s, so that it learns their
// templates, and annotates each message with annotate.
func Annotate[H any](t testing.TB, s Session[H], msgs [][]byte, annotate func(*wire.Templates, []byte) []Span) [][]Span {
	t.Helper()
	var spans [][]Span
	for _, b := range msgs {
		if _, err := s.Decode(b); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, annotate(s.Templates(), b))
	}
	return spans
}

// Announce sets the interface names, ignored counters and capture filter
// counts (sent by encoders configured to) of the golden, tshark and round
// trip tests.
func Announce(e Encoder, ifs ...wire.Interface) {
	if len(ifs) == 0 {
		ifs = []wire.Interface{{Index: 3, Name: "eth0"}}
	}
	e.SetInterfaces(ifs)
	e.SetIgnored(11, 2222)
	e.SetFiltered(Filtered)
}

// Filtered are the capture filter counts Announce sets.
var Filtered = []wire.FilterCount{
	{Ifindex: 3, Direction: flow.Ingress, Packets: 5, Octets: 600},
	{Ifindex: 70000, Direction: flow.Egress, Packets: 7, Octets: 1 << 40},
}

// FilteredRoundTrip encodes a record with e, configured for capture
// filter counts in domain, after Announce, decodes the messages with s,
// and checks the filter counts came back in their own records, not taken
// for exporter statistics.
func FilteredRoundTrip[H any](t testing.TB, e Encoder, s Session[H], domain uint32) {
	t.Helper()
	Announce(e)
	var sink Sink
	Encode(t, e, &sink, RecordV4())
	got, _ := DecodeAll(t, s, sink.Bytes())
	CheckFiltered(t, got.Filtered, domain)
	if len(got.Stats) != 1 || got.Stats[0].IgnoredPackets != 11 {
		t.Errorf("exporter stats %+v: the filter counts must not be taken for them", got.Stats)
	}
}

// CheckFiltered checks the capture filter counts decoded from messages
// of an encoder that sent Filtered, as domain.
func CheckFiltered(t testing.TB, got []wire.FilterCount, domain uint32) {
	t.Helper()
	if len(got) != len(Filtered) {
		t.Fatalf("filtered %+v, want %+v", got, Filtered)
	}
	for i, w := range Filtered {
		w.Domain = domain
		if got[i] != w {
			t.Errorf("filtered %d: %+v, want %+v", i, got[i], w)
		}
	}
}

// Encode encodes recs into s and fails t on an error.
func Encode(t testing.TB, e Encoder, s *Sink, recs ...flow.Record) {
	t.Helper()
	if _, err := e.Encode(recs, s.Emit); err != nil {
		t.Fatal(err)
	}
}

// GoldenMessages are the messages of the golden tests: templates, options
// data, an IPv4 and an IPv6 record; a second later data only.
func GoldenMessages(t testing.TB, e Encoder, clk *Clock) [][]byte {
	t.Helper()
	Announce(e)
	var s Sink
	Encode(t, e, &s, RecordV4(), RecordV6())
	clk.Advance(1)
	Encode(t, e, &s, RecordV6(), RecordV4())
	return s.Bytes()
}

// TsharkMessages are the messages of the tshark tests: those of the first
// golden message, then 40 records after forced templates.
func TsharkMessages(t testing.TB, e Encoder) [][]byte {
	t.Helper()
	Announce(e)
	var s Sink
	Encode(t, e, &s, RecordV4(), RecordV6())
	recs := make([]flow.Record, 40)
	for i := range recs {
		recs[i] = RecordV4()
		recs[i].SrcPort = uint16(i)
	}
	e.ForceTemplates()
	Encode(t, e, &s, recs...)
	return s.Bytes()
}

// TsharkWant is what tshark shows of TsharkMessages in either format.
var TsharkWant = []string{
	"SrcAddr: 198.18.0.1",
	"DstAddr: fd00:1:2:3:4:5:6:7",
	"Octets: 1099511627783",
	"Packets: 8589934597",
	"IfName: eth0",
	"Sampling interval: 100",
	"Ignored Packets: 11",
	"Ignored Octets: 2222",
	"PacketsExp: 1",
	"FlowsExp: 2",
}

// Contains fails t for each of want that out lacks.
func Contains(t testing.TB, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tshark output lacks %q", w)
		}
	}
}

// Step encodes one IPv4 record and returns the one message it makes.
func Step(t testing.TB, e Encoder) wire.Packet {
	t.Helper()
	var s Sink
	Encode(t, e, &s, RecordV4())
	if len(s.Pkts) != 1 {
		t.Fatalf("%d messages", len(s.Pkts))
	}
	return s.Pkts[0]
}

// FuzzDecode decodes b twice with s, so that a message's own templates
// apply to its data, and decodes the held sets back in. It fails t when s
// holds more than maxTemplates templates or yields more records than b
// has octets (not counting the responders' records of biflow records).
func FuzzDecode[H any](t *testing.T, s Session[H], b []byte, maxTemplates int) {
	for range 2 {
		m, err := s.Decode(b)
		// A record takes at least an octet; a biflow record (RFC 5103)
		// gives two.
		if err == nil && len(m.Records)-m.Reversed > len(b) || m.Reversed > len(m.Records)-m.Reversed {
			t.Fatalf("%d records (%d from reverse elements) from %d octets", len(m.Records), m.Reversed, len(b))
		}
		for _, ms := range m.Missing {
			_ = s.DecodeHeld(ms)
		}
		if s.Templates().Len() > maxTemplates {
			t.Fatalf("%d templates held", s.Templates().Len())
		}
	}
}

// BenchmarkEncode encodes 1000 records, every third IPv6, per iteration.
func BenchmarkEncode(b *testing.B, e Encoder) {
	recs := Numbered(1000, true)
	emit := func(wire.Packet) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Encode(recs, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode decodes the data messages of 1000 records, every third
// IPv6, per iteration.
func BenchmarkDecode[H any](b *testing.B, e Encoder, s Session[H]) {
	var sink Sink
	if _, err := e.Encode(Numbered(1000, true), sink.Emit); err != nil {
		b.Fatal(err)
	}
	msgs := sink.Bytes()
	if _, err := s.Decode(msgs[0]); err != nil { // learn the templates
		b.Fatal(err)
	}
	msgs = msgs[1:]
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, msg := range msgs {
			m, err := s.Decode(msg)
			if err != nil {
				b.Fatal(err)
			}
			n += len(m.Records)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// Set builds a set (flowset) with id and body.
func Set(id uint16, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	return append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, id), uint16(4+len(b))), b...)
}

// U16s returns v in network byte order.
func U16s(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// TemplateRecord is a template record: id, field count, then the (type,
// length) pairs in fields.
func TemplateRecord(id uint16, fields ...uint16) []byte {
	return append(U16s(id, uint16(len(fields)/2)), U16s(fields...)...)
}

// IENames names the IEs of kflow's templates in golden file annotations.
var IENames = map[uint16]string{
	1: "octetDeltaCount", 2: "packetDeltaCount", 4: "protocolIdentifier", 5: "ipClassOfService",
	6: "tcpControlBits", 7: "sourceTransportPort", 8: "sourceIPv4Address", 10: "ingressInterface",
	11: "destinationTransportPort", 12: "destinationIPv4Address", 14: "egressInterface",
	27: "sourceIPv6Address", 28: "destinationIPv6Address", 32: "icmpTypeCodeIPv4",
	34: "samplingInterval", 35: "samplingAlgorithm", 41: "exportedMessageTotalCount",
	42: "exportedFlowRecordTotalCount", 52: "minimumTTL", 53: "maximumTTL", 58: "vlanId",
	60: "ipVersion", 61: "flowDirection", 82: "interfaceName", 136: "flowEndReason",
	139: "icmpTypeCodeIPv6", 149: "observationDomainId", 152: "flowStartMilliseconds",
	153: "flowEndMilliseconds", 160: "systemInitTimeMilliseconds", 164: "ignoredPacketTotalCount",
	165: "ignoredOctetTotalCount", 245: "dot1qCustomerVlanId", 304: "selectorAlgorithm", 305: "samplingPacketInterval", 311: "samplingProbability",
	306: "samplingPacketSpace",
}

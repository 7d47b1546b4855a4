// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// sampleRecords returns flows covering what nfdump files hold: IPv4 and
// IPv6, TCP, UDP, ICMP and ICMPv6, both directions, every end reason,
// 64-bit counters. t0 is a whole second.
func sampleRecords(t0 time.Time) []flow.Record {
	a4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	var recs []flow.Record
	add := func(src, dst string, proto uint8, sp, dp uint16, icmpType, icmpCode uint8) {
		i := len(recs)
		r := flow.Record{
			Src: a4(src), Dst: a4(dst), Proto: proto, SrcPort: sp, DstPort: dp,
			ICMPType: icmpType, ICMPCode: icmpCode,
			Packets: uint64(1 + 7*i), Octets: uint64(60 + 1013*i),
			Start: t0.Add(time.Duration(i)*time.Second + time.Duration(17*i)*time.Millisecond),
			InIf:  uint32(1 + i%3), OutIf: uint32(10 + i%2),
			VLAN: uint16(100 * (i % 2)), TOS: uint8(4 * (i % 3)),
			MinTTL: 64, MaxTTL: 64, // not kept by nfdump
			InnerVLAN: 7, // not kept by nfdump
			Direction: flow.Direction(i % 2), EndReason: flow.EndReason(1 + i%4),
		}
		r.End = r.Start.Add(time.Duration(250*i+3) * time.Millisecond)
		if proto == flow.ProtoTCP {
			r.TCPFlags = []uint16{flow.TCPSyn | flow.TCPAck, flow.TCPFin | flow.TCPAck | flow.TCPPsh, flow.TCPRst, flow.TCPSyn | flow.TCPEce | flow.TCPCwr}[i%4]
		}
		recs = append(recs, r)
	}
	add("198.18.0.1", "198.19.0.2", flow.ProtoTCP, 40000, 443, 0, 0)
	add("198.19.0.2", "198.18.0.1", flow.ProtoTCP, 443, 40000, 0, 0)
	add("198.18.0.3", "198.19.1.4", flow.ProtoUDP, 5353, 53, 0, 0)
	add("198.18.0.3", "198.19.1.4", flow.ProtoICMP, 0, 0, 8, 0)
	add("198.19.1.4", "198.18.0.3", flow.ProtoICMP, 0, 0, 3, 3)
	add("198.18.255.254", "198.19.255.255", 47, 0, 0, 0, 0)
	add("fd00::1", "fd00::2:3", flow.ProtoTCP, 50000, 22, 0, 0)
	add("fd00:1:2:3:4:5:6:7", "fd00::9", flow.ProtoUDP, 123, 123, 0, 0)
	add("fd00::1", "fd00::2:3", flow.ProtoICMPv6, 0, 0, 128, 0)
	add("fd00::2:3", "fd00::1", flow.ProtoICMPv6, 0, 0, 1, 4)
	recs[2].Packets, recs[2].Octets = 1<<33+5, 1<<41+7 // past 32 bits
	return recs
}

// stored returns r as nfdump keeps it: 8 TCP flag bits, no TTLs, no
// inner VLAN, sent by exporter 127.0.0.1 in domain.
func stored(r flow.Record, domain uint32) flow.Record {
	r.TCPFlags &= 0xff
	r.MinTTL, r.MaxTTL, r.InnerVLAN = 0, 0, 0
	r.Exporter, r.ObservationDomain = netip.MustParseAddr("127.0.0.1"), domain
	return r
}

// sortRecords orders records by everything they hold, so two sets of the
// same records compare equal whatever order they were read in.
func sortRecords(recs []flow.Record) []flow.Record {
	out := slices.Clone(recs)
	slices.SortFunc(out, func(a, b flow.Record) int { return strings.Compare(recordKey(a), recordKey(b)) })
	return out
}

func recordKey(r flow.Record) string {
	r.Start, r.End = r.Start.UTC(), r.End.UTC()
	return fmt.Sprintf("%+v", r)
}

// customIPFIX encodes recs as IPFIX messages with a template carrying what
// kflow's own exporter does not send: AS numbers, prefix lengths and next
// hops (IPv4 records in template 256, IPv6 in 257).
func customIPFIX(domain uint32, recs []flow.Record) [][]byte {
	common := []wire.Field{
		{ID: wire.IESourceTransportPort, Length: 2}, {ID: wire.IEDestinationTransportPort, Length: 2},
		{ID: wire.IEProtocolIdentifier, Length: 1}, {ID: wire.IETCPControlBits, Length: 1},
		{ID: wire.IEIPClassOfService, Length: 1},
		{ID: wire.IEPacketDeltaCount, Length: 8}, {ID: wire.IEOctetDeltaCount, Length: 8},
		{ID: wire.IEFlowStartMilliseconds, Length: 8}, {ID: wire.IEFlowEndMilliseconds, Length: 8},
		{ID: wire.IEIngressInterface, Length: 4}, {ID: wire.IEEgressInterface, Length: 4},
		{ID: wire.IEBGPSourceASNumber, Length: 4}, {ID: wire.IEBGPDestinationASNumber, Length: 4},
		{ID: wire.IEVlanID, Length: 2}, {ID: wire.IEFlowDirection, Length: 1}, {ID: wire.IEFlowEndReason, Length: 1},
	}
	v4 := append([]wire.Field{
		{ID: wire.IESourceIPv4Address, Length: 4}, {ID: wire.IEDestinationIPv4Address, Length: 4},
		{ID: wire.IESourceIPv4PrefixLength, Length: 1}, {ID: wire.IEDestinationIPv4PrefixLength, Length: 1},
		{ID: wire.IEIPNextHopIPv4Address, Length: 4}, {ID: wire.IEICMPTypeCodeIPv4, Length: 2},
	}, common...)
	v6 := append([]wire.Field{
		{ID: wire.IESourceIPv6Address, Length: 16}, {ID: wire.IEDestinationIPv6Address, Length: 16},
		{ID: wire.IESourceIPv6PrefixLength, Length: 1}, {ID: wire.IEDestinationIPv6PrefixLength, Length: 1},
		{ID: wire.IEIPNextHopIPv6Address, Length: 16}, {ID: wire.IEICMPTypeCodeIPv6, Length: 2},
	}, common...)
	var msgs [][]byte
	seq := uint32(0)
	for _, fam := range []struct {
		id     uint16
		fields []wire.Field
		v6     bool
	}{{256, v4, false}, {257, v6, true}} {
		var data []byte
		n := 0
		for i := range recs {
			if recs[i].Src.Is6() != fam.v6 {
				continue
			}
			for _, f := range fam.fields {
				b := make([]byte, f.Length)
				wire.PutField(b, f.ID, &recs[i], 0)
				data = append(data, b...)
			}
			n++
		}
		if n == 0 {
			continue
		}
		tpl := binary.BigEndian.AppendUint16(nil, fam.id)
		tpl = binary.BigEndian.AppendUint16(tpl, uint16(len(fam.fields)))
		for _, f := range fam.fields {
			tpl = binary.BigEndian.AppendUint16(tpl, f.ID)
			tpl = binary.BigEndian.AppendUint16(tpl, f.Length)
		}
		msg := make([]byte, 16)
		msg = appendSet(msg, 2, tpl)
		msg = appendSet(msg, fam.id, data)
		binary.BigEndian.PutUint16(msg[0:], 10)
		binary.BigEndian.PutUint16(msg[2:], uint16(len(msg)))
		binary.BigEndian.PutUint32(msg[4:], uint32(time.Now().Unix()))
		binary.BigEndian.PutUint32(msg[8:], seq)
		binary.BigEndian.PutUint32(msg[12:], domain)
		seq += uint32(n)
		msgs = append(msgs, msg)
	}
	return msgs
}

func appendSet(b []byte, id uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

// nfdumpJSON returns the records "nfdump -r path -o json" prints, in file
// order, with the fields nfdump's JSON carries (it has no end reason and
// no observation domain).
func nfdumpJSON(t *testing.T, path string) []flow.Record {
	t.Helper()
	cmd := exec.Command("nfdump", "-r", path, "-o", "json")
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nfdump -r %s -o json: %v\n%s", path, err, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("nfdump json: %v\n%s", err, out)
	}
	var recs []flow.Record
	for _, m := range rows {
		if m["type"] != "FLOW" {
			continue
		}
		num := func(k string) uint64 {
			v, _ := m[k].(float64)
			return uint64(v)
		}
		addr := func(keys ...string) netip.Addr {
			for _, k := range keys {
				if s, ok := m[k].(string); ok {
					return netip.MustParseAddr(s)
				}
			}
			return netip.Addr{}
		}
		when := func(k string) time.Time {
			s, _ := m[k].(string)
			tm, err := time.Parse("2006-01-02T15:04:05.000", s)
			if err != nil {
				t.Fatalf("nfdump json %s %q: %v", k, s, err)
			}
			return tm
		}
		r := flow.Record{
			Src: addr("src4_addr", "src6_addr"), Dst: addr("dst4_addr", "dst6_addr"),
			Proto: uint8(num("proto")), SrcPort: uint16(num("src_port")), DstPort: uint16(num("dst_port")),
			ICMPType: uint8(num("icmp_type")), ICMPCode: uint8(num("icmp_code")),
			Packets: num("in_packets"), Octets: num("in_bytes"), Start: when("first"), End: when("last"),
			TOS: uint8(num("src_tos")), InIf: uint32(num("input_snmp")), OutIf: uint32(num("output_snmp")),
			SrcMask: uint8(num("src_mask")), DstMask: uint8(num("dst_mask")), Direction: flow.Direction(num("direction")),
			VLAN: uint16(num("src_vlan")), SrcAS: uint32(num("src_as")), DstAS: uint32(num("dst_as")),
			NextHop:  addr("ip4_next_hop", "ip6_next_hop"),
			Exporter: addr("ip4_router", "ip6_router"),
		}
		if s, ok := m["tcp_flags"].(string); ok {
			for i, c := range s {
				if c != '.' && i < 8 {
					r.TCPFlags |= 0x80 >> i
				}
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// asNfdumpJSON clears what nfdump's JSON does not print.
func asNfdumpJSON(r flow.Record) flow.Record {
	r.EndReason, r.ObservationDomain, r.SamplingInterval = 0, 0, 0
	return r
}

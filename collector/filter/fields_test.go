// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// randRecord draws a record from small domains, so that filters match
// some records and not others.
func randRecord(rng *rand.Rand) flow.Record {
	addr := func() netip.Addr {
		switch rng.IntN(4) {
		case 0:
			return netip.Addr{}
		case 1:
			return netip.MustParseAddr("fd00::53")
		}
		return netip.AddrFrom4([4]byte{198, byte(18 + rng.IntN(2)), 0, byte(rng.IntN(3))})
	}
	small := func() uint64 { return []uint64{0, 1, 2, 53, 443, 10_000, 20_000}[rng.IntN(7)] }
	r := flow.Record{
		Src: addr(), Dst: addr(), SrcPort: uint16(small()), DstPort: uint16(small()),
		Proto: []uint8{1, 6, 17, 58, 47}[rng.IntN(5)], ICMPType: uint8(rng.IntN(9)), ICMPCode: uint8(rng.IntN(2)),
		VLAN: uint16(rng.IntN(3)), InIf: uint32(rng.IntN(4)), OutIf: uint32(rng.IntN(4)),
		Direction: flow.Direction(rng.IntN(2)), Packets: small(), Octets: small() * 10,
		TCPFlags: uint16(rng.IntN(64)), TOS: uint8(rng.IntN(3)) * 0x20, SrcAS: uint32(small()), DstAS: uint32(small()),
		SrcMask: uint8(rng.IntN(3)) * 8, DstMask: uint8(rng.IntN(3)) * 8, NextHop: addr(), Exporter: addr(),
	}
	if rng.IntN(4) > 0 {
		r.Start = t0.Add(time.Duration(rng.IntN(3)) * time.Second)
		r.End = r.Start.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
	}
	return r
}

// TestFields: a filter matches a record as it matches the record with
// only the filter's fields kept.
func TestFields(t *testing.T) {
	filters := []string{
		"any", "proto tcp", "ipv4", "ipv6", "host 198.18.0.1", "src ip 198.18.0.1", "dst host 198.19.0.2",
		"src or dst ip 198.18.0.0", "src and dst ip 198.18.0.0", "net 198.19.0.0/16", "src net 198.18/16",
		"dst net 198.18.0.0 255.255.0.0", "ip in [198.18.0.1 198.19.0.0/24]", "src ip in [fd00::53]",
		"port 53", "src port 443", "dst port 53", "dst port > 100", "port in [53 443]", "dst port in [2048]",
		"tos 32", "src tos > 0", "vlan 1", "as 53", "src as 443", "dst as in [1 2]", "mask 8", "src mask 16",
		"flags S", "not flags SA", "if 2", "in if 1", "out if 3", "in packets > 2", "bytes > 100", "packets < 3",
		"flows 1", "duration > 1000", "pps > 1", "bps > 100", "bpp > 5", "icmp-type 8", "icmp-code 1",
		"exporter 198.18.0.1", "router ip 198.19.0.0", "next ip 198.18.0.2", "flowdir egress",
		"proto udp and dst port 53", "net 198.19.0.0/16 and bytes > 10k", "not (port 53 or proto icmp)",
	}
	rng := rand.New(rand.NewPCG(4, 5))
	recs := []flow.Record{web, dns, ping, syn}
	for range 3000 {
		recs = append(recs, randRecord(rng))
	}
	for _, text := range filters {
		f := MustParse(text)
		fl := f.Fields()
		matched := 0
		for i := range recs {
			kept := fl.Keep(recs[i])
			got, want := f.Match(&kept), f.Match(&recs[i])
			if got != want {
				t.Fatalf("%q (fields %#x): %v on the kept fields, %v on %+v", text, fl, got, want, recs[i])
			}
			if want {
				matched++
			}
		}
		if f.MatchesAll() && fl != 0 {
			t.Errorf("%q: matches all but reads %#x", text, fl)
		}
		_ = matched
	}
	if MustParse("proto tcp").Fields() != flowfile.FieldProto {
		t.Errorf("proto tcp: fields %#x", MustParse("proto tcp").Fields())
	}
}

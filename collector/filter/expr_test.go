// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// eval evaluates an Expr on r the way its documentation says: the twin
// of Match that a translating backend follows.
func eval(e Expr, r *flow.Record, neg bool) bool {
	switch e := e.(type) {
	case And:
		return eval(e.L, r, neg) && eval(e.R, r, neg)
	case Or:
		return eval(e.L, r, neg) || eval(e.R, r, neg)
	case Not:
		return !eval(e.X, r, !neg)
	case All:
		return true
	case Family:
		return r.Src.Is6() == e.V6 && r.Src.IsValid()
	case Flags:
		if neg {
			return r.TCPFlags&e.Mask != 0
		}
		return r.TCPFlags&e.Mask == e.Mask
	case Compare:
		v, ok := number(e.Field, r)
		return ok && e.Op.Holds(v, e.Value)
	case InNumbers:
		v, ok := number(e.Field, r)
		_, found := slices.BinarySearch(e.Values, v)
		return ok && found
	case AddrIn:
		a := map[Field]netip.Addr{FieldSrc: r.Src, FieldDst: r.Dst, FieldExporter: r.Exporter, FieldNextHop: r.NextHop}[e.Field]
		if _, found := slices.BinarySearchFunc(e.Addrs, a, netip.Addr.Compare); found {
			return true
		}
		for _, n := range e.Nets {
			if n.Contains(a) {
				return true
			}
		}
		return false
	case Ident:
		return r.Ident == e.Name
	case Cgroup:
		if r.Cgroup == "" {
			return false
		}
		n := flow.ParseCgroup(r.Cgroup)
		switch e.Kind {
		case "unit":
			return n.Unit == e.Value
		case "container":
			return n.Container != "" && strings.HasPrefix(n.Container, e.Value)
		case "pod":
			return n.Pod == e.Value
		case "cgroup":
			return r.Cgroup == e.Value || strings.HasPrefix(r.Cgroup, e.Value+"/")
		}
	}
	panic("unknown expr")
}

func number(f Field, r *flow.Record) (uint64, bool) {
	switch f {
	case FieldSrcPort:
		return uint64(r.SrcPort), true
	case FieldDstPort:
		return uint64(r.NfDstPort()), true
	case FieldProto:
		return uint64(r.Proto), true
	case FieldTOS:
		return uint64(r.TOS), true
	case FieldVLAN:
		return uint64(r.VLAN), true
	case FieldSrcAS:
		return uint64(r.SrcAS), true
	case FieldDstAS:
		return uint64(r.DstAS), true
	case FieldSrcMask:
		return uint64(r.SrcMask), true
	case FieldDstMask:
		return uint64(r.DstMask), true
	case FieldInIf:
		return uint64(r.InIf), true
	case FieldOutIf:
		return uint64(r.OutIf), true
	case FieldDirection:
		return uint64(r.Direction), true
	case FieldPackets:
		return r.Packets, true
	case FieldBytes:
		return r.Octets, true
	case FieldFlows:
		return 1, true
	case FieldDuration:
		return r.DurationMs(), true
	case FieldPPS:
		return r.PPS(), true
	case FieldBPS:
		return r.BPS(), true
	case FieldBPP:
		return r.BPP(), true
	case FieldICMPType:
		return uint64(r.NfDstPort() >> 8), r.IsICMP()
	case FieldICMPCode:
		return uint64(r.NfDstPort() & 0xff), r.IsICMP()
	case FieldDomain:
		return uint64(r.ObservationDomain), true
	case FieldEngineType:
		return uint64(r.ObservationDomain>>8) & 0xff, true
	case FieldEngineID:
		return uint64(r.ObservationDomain) & 0xff, true
	}
	panic("unknown field")
}

// exprFilters exercise every primitive, direction and negation.
var exprFilters = []string{
	"", "any", "engine-type 1", "engine-id > 1", "observation domain id 258", "not observation domain id 7", "ipv4", "ipv6", "not ipv6", "proto tcp", "proto 47",
	"host 198.18.0.10", "src ip 198.18.0.10", "dst host fd00::53", "src and dst net 198.18.0.0/16",
	"src or dst net 198.19/16", "net 198.19.0.0 255.255.0.0", "net ::ffff:198.19.0.0/112", "dst net fd00::/64",
	"ip in [198.19.5.1 fd00::53 198.18.0.0/30]", "not src ip in [198.19.0.0/16, fd00::10]",
	"port 443", "dst port > 1024", "src port <= 12345", "port != 443", "port in [22 53 2048]", "not dst port in [53]",
	"icmp-type 8", "icmp-code 0", "not icmp-type 8",
	"flags S", "flags SA", "not flags AF", "not (flags SA or proto udp)", "not not flags SA",
	"tos 32", "dst tos > 0", "vlan 7", "src vlan 7", "as 64500", "src as in [64500 64501]", "dst as > 0", "src mask 24", "mask 0",
	"in if 3", "out if 3", "if 3", "if > 2",
	"packets > 3", "packets 1", "in bytes > 1k", "bytes <= 80", "flows 1", "flows > 1", "duration > 2500", "duration 0",
	"pps 5", "bps > 10k", "bpp < 100", "bpp 500",
	"exporter 198.18.255.1", "router ip 198.18.255.1", "next ip 198.18.0.1", "flowdir egress", "flowdir 0",
	"proto tcp and (port 22 or port 443) and bytes > 100", "not (proto udp or (src port 53 and not flags S))",
	"host ::1%eth0",
	"unit nginx", "unit user@1000.service", "not unit nginx.service", "container abab", "cgroup /system.slice", "cgroup /",
	"pod 1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "unit nginx and port 443",
}

// exprRecords are fixed records, their turned copies and random ones.
func exprRecords() []flow.Record {
	recs := []flow.Record{web, dns, ping, syn}
	for _, r := range recs[:4] {
		recs = append(recs, turned(r))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []string{"198.18.0.10", "198.19.5.1", "198.18.0.1", "198.18.0.2", "fd00::10", "fd00::53", "::ffff:198.19.5.1", "198.18.255.1"}
	for range 300 {
		a := func() netip.Addr { return netip.MustParseAddr(addrs[rng.IntN(len(addrs))]) }
		start := t0.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		r := flow.Record{Src: a(), Dst: a(), Exporter: a(), NextHop: a(), SrcPort: uint16(rng.IntN(3) * 443), DstPort: uint16(rng.IntN(2) * 53),
			Proto: []uint8{1, 6, 17, 47, 58}[rng.IntN(5)], ICMPType: uint8(rng.IntN(9)), ICMPCode: uint8(rng.IntN(2)),
			TCPFlags: uint16(rng.IntN(64)), TOS: uint8(rng.IntN(2) * 32), VLAN: uint16(rng.IntN(2) * 7),
			SrcAS: uint32(64500 + rng.IntN(2)), DstAS: uint32(rng.IntN(2)), SrcMask: uint8(rng.IntN(2) * 24),
			InIf: uint32(rng.IntN(4)), OutIf: uint32(rng.IntN(4)), Direction: flow.Direction(rng.IntN(2)),
			Packets: uint64(rng.IntN(10)), Octets: uint64(rng.IntN(10000)), Start: start,
			End: start.Add(time.Duration(rng.IntN(4000)-500) * time.Millisecond)}
		if rng.IntN(8) == 0 {
			r.Start = time.Time{}
		}
		r.Cgroup = []string{"", "/system.slice/nginx.service", "/user.slice/user-1000.slice/user@1000.service/x.scope",
			"/kubepods/burstable/pod1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5/" + strings.Repeat("ab", 32)}[rng.IntN(4)]
		recs = append(recs, r)
	}
	return recs
}

// TestExprMatches: evaluating the syntax tree as documented gives Match's
// answer for every filter on every record (fixed ones, their turned
// copies, and random ones).
func TestExprMatches(t *testing.T) {
	recs := exprRecords()
	for _, src := range exprFilters {
		f := MustParse(src)
		for _, x := range []*Filter{f, f.Reverse()} {
			e := x.Expr()
			for i := range recs {
				if got, want := eval(e, &recs[i], false), x.Match(&recs[i]); got != want {
					t.Errorf("%q on record %d (%+v): the tree says %v, Match %v", x, i, recs[i], got, want)
				}
			}
		}
	}
}

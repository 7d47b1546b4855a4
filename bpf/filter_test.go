// SPDX-License-Identifier: Apache-2.0

package bpf

// The capture filter under BPF_PROG_TEST_RUN: for filters covering every
// primitive, each test frame is run once through the programs, and the
// flows counted and the filtered counters are compared with what the Go
// reference of the filter (pcapfilter.Program.Match, itself checked
// against hand-written expectations) says of each frame.

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/kflow-dev/kflow/bpf/pcapfilter"
	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// filterFrame is a test frame and the packet the filter sees in it.
type filterFrame struct {
	name  string
	bytes []byte
	pkt   pcapfilter.Packet
}

func addrsAt(l gopacket.SerializableLayer, src, dst netip.Addr) gopacket.SerializableLayer {
	switch l := l.(type) {
	case *layers.IPv4:
		l.SrcIP, l.DstIP = src.AsSlice(), dst.AsSlice()
	case *layers.IPv6:
		l.SrcIP, l.DstIP = src.AsSlice(), dst.AsSlice()
	}
	return l
}

func filterFrames(tb testing.TB) []filterFrame {
	a4, b4 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.2.2")
	mapped := netip.MustParseAddr("::ffff:198.18.0.1")
	frag := ip4(layers.IPProtocolUDP, 64, 0)
	frag.FragOffset = 5
	pkt := func(v uint8, src, dst netip.Addr, proto uint8, sp, dp uint16, ports bool, vlan uint16) pcapfilter.Packet {
		return pcapfilter.Packet{Version: v, Src: src, Dst: dst, Proto: proto, SrcPort: sp, DstPort: dp, Ports: ports, VLAN: vlan}
	}
	return []filterFrame{
		{"udp4", frame(tb, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(40000, 53), payload(10)),
			pkt(4, v4A, v4B, 17, 40000, 53, true, 0)},
		{"tcp4", frame(tb, eth4(), addrsAt(ip4(layers.IPProtocolTCP, 64, 0), a4, b4), tcp(22, 50000, fACK), payload(20)),
			pkt(4, a4, b4, 6, 22, 50000, true, 0)},
		{"tcp6", frame(tb, eth6(), ip6(6, 64, 0), tcpTS(50001, 443, fSYN)),
			pkt(6, v6A, v6B, 6, 50001, 443, true, 0)},
		{"icmp4", frame(tb, eth4(), ip4(layers.IPProtocolICMPv4, 64, 0), icmp4(8, 0), payload(56)),
			pkt(4, v4A, v4B, 1, 0, 0, false, 0)},
		{"icmp6", frame(tb, eth6(), ip6(58, 64, 0), icmp6(128, 0), payload(8)),
			pkt(6, v6A, v6B, 58, 0, 0, false, 0)},
		{"frag4", frame(tb, eth4(), frag, payload(40)),
			pkt(4, v4A, v4B, 17, 0, 0, false, 0)},
		{"vlan10", frame(tb, ether(layers.EthernetTypeDot1Q), dot1q(10, layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(10)),
			pkt(4, v4A, v4B, 17, 1, 2, true, 10)},
		{"qinq", frame(tb, ether(layers.EthernetTypeQinQ), dot1q(30, layers.EthernetTypeDot1Q), dot1q(40, layers.EthernetTypeIPv6), ip6(17, 64, 0), udp(3, 4)),
			pkt(6, v6A, v6B, 17, 3, 4, true, 30)},
		{"gre6", frame(tb, eth6(), ip6(47, 64, 0), payload(24)),
			pkt(6, v6A, v6B, 47, 0, 0, false, 0)},
		{"sctp4", frame(tb, eth4(), ip4(layers.IPProtocolSCTP, 64, 0), &layers.SCTP{SrcPort: 5000, DstPort: 36412}, payload(16)),
			pkt(4, v4A, v4B, 132, 5000, 36412, true, 0)},
		{"mapped", frame(tb, eth6(), addrsAt(ip6(17, 64, 0), mapped, v6B), udp(1, 2)),
			pkt(6, mapped, v6B, 17, 1, 2, true, 0)},
	}
}

// filterCases cover every primitive and operator.
var filterCases = []string{
	"host 198.18.0.1", "src host 198.18.1.1", "dst host 198.19.255.2", "dst fd00:0:0:ffff::2", "host fd00::1",
	"src and dst host 198.18.1.1", "src or dst host 198.18.2.2",
	"net 198.18.0.0/16", "net 198.18.2", "dst net 198.19.0.0/16", "net 198.18.0.0 mask 255.255.0.0",
	"net fd00::/16", "src net fd00::/64", "dst net fd00:0:0:ffff::/64", "ip6 net ::ffff:0:0/96",
	"port 53", "src port 22", "dst port 443", "port 443 or 53", "tcp port 53", "udp port 53", "port 36412",
	"portrange 40000-50001", "src portrange 1-5000", "dst portrange 1-100",
	"tcp", "udp", "sctp", "icmp", "icmp6", "proto 47", "ip6 proto 47", "ip proto 47", "proto \\tcp",
	"ip", "ip6", "vlan", "vlan 10", "vlan 30", "vlan 40",
	"not vlan", "not ip", "! tcp && ! udp", "tcp or udp and ip6", "tcp or (udp and ip6)",
	"not (host 198.18.0.1 or net fd00::/16) and ip", "host 198.18.0.1 and not port 53",
}

// longestFilter compiles to pcapfilter.MaxInsns tests: loaded with it,
// the datapath runs any shorter program put in its place.
func longestFilter() string {
	var hosts []string
	for i := range pcapfilter.MaxInsns / 2 {
		hosts = append(hosts, fmt.Sprintf("host 198.51.100.%d", i))
	}
	return strings.Join(hosts, " or ")
}

func TestFilterPrimitives(t *testing.T) {
	frames := filterFrames(t)
	// One datapath for every case (loading one takes a while): the
	// filter program lives in the object's .bss, so each case writes its
	// own there.
	d := loadTest(t, Config{MapEntries: 64, Filter: longestFilter()})
	for _, expr := range filterCases {
		t.Run(expr, func(t *testing.T) {
			prog, err := pcapfilter.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.objs.FilterInsns.Set(filterInsns(prog)); err != nil {
				t.Fatal(err)
			}
			for _, hook := range []string{"tcx-in", "tc-out", "xdp"} {
				var want []flow.Record
				var out FilteredCount
				for _, f := range frames {
					if !prog.Match(&f.pkt) {
						out.Packets++
						out.Octets += ipLen(t, f.bytes)
						continue
					}
					r := flow.Record{Src: f.pkt.Src.Unmap(), Dst: f.pkt.Dst, Proto: f.pkt.Proto, VLAN: f.pkt.VLAN, InIf: 1,
						Packets: 1, Octets: ipLen(t, f.bytes)}
					if f.pkt.Src.Is4In6() {
						r.Src = f.pkt.Src
					}
					want = append(want, r)
				}
				before, err := d.Filtered()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range frames {
					runFrames(t, d.testProgram(t, hook), nil, f.bytes)
				}
				recs, st := drainTest(t, d)
				checkStats(t, st, Stats{})
				// Compare identities and counts; the parser's own tests
				// check the other fields.
				var got []flow.Record
				for _, r := range recs {
					got = append(got, flow.Record{Src: r.Src, Dst: r.Dst, Proto: r.Proto, VLAN: r.VLAN, InIf: r.InIf + r.OutIf,
						Packets: r.Packets, Octets: r.Octets})
				}
				slices.SortFunc(got, recordOrder)
				slices.SortFunc(want, recordOrder)
				if !slices.Equal(got, want) {
					t.Errorf("%s: counted\n%s\nwant\n%s", hook, fmtRecords(got), fmtRecords(want))
				}
				after, err := d.Filtered()
				if err != nil {
					t.Fatal(err)
				}
				dir := flow.Ingress
				if hook == "tc-out" {
					dir = flow.Egress
				}
				if delta := filteredDelta(before, after, 1, dir); delta != out {
					t.Errorf("%s: filtered %+v, want %+v", hook, delta, out)
				}
			}
		})
	}
}

func filteredDelta(before, after []FilteredCount, ifindex uint32, dir flow.Direction) FilteredCount {
	d := FilteredCount{}
	for _, c := range after {
		if c.Ifindex == ifindex && c.Direction == dir {
			d.Packets += c.Packets
			d.Octets += c.Octets
		}
	}
	for _, c := range before {
		if c.Ifindex == ifindex && c.Direction == dir {
			d.Packets -= c.Packets
			d.Octets -= c.Octets
		}
	}
	return d
}

// TestFilterGSO: a rejected GSO packet is counted as its segments, as an
// accepted one would be.
func TestFilterGSO(t *testing.T) {
	const segs, mss = 3, 1000
	ns := newNetnsThread(t)
	ctx := newKernelCtx(t, "__sk_buff").set(t, "ifindex", uint32(ns.ifA)).set(t, "gso_segs", segs).set(t, "gso_size", mss).bytes()
	d := loadTest(t, Config{MapEntries: 16, Filter: "not tcp"})
	gso := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(1, 2, fACK), payload(segs*mss))
	var err error
	ns.do(func() { err = runOnce(d.objs.KflowTcxEgress, gso, ctx) })
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Filtered()
	if err != nil {
		t.Fatal(err)
	}
	want := []FilteredCount{{Ifindex: uint32(ns.ifA), Direction: flow.Egress, Packets: segs, Octets: segs * (20 + 20 + mss)}}
	if !slices.Equal(got, want) {
		t.Errorf("filtered %+v, want %+v", got, want)
	}
	if recs, _ := drainTest(t, d); len(recs) != 0 {
		t.Errorf("a filtered packet was counted in flows: %s", fmtRecords(recs))
	}
}

// TestFilterLoadError: a bad filter fails Load with the syntax error.
func TestFilterLoadError(t *testing.T) {
	_, err := Load(Config{Filter: "host 198.18.0.1 and ether host 02:00:00:00:00:01"})
	var se *filter.SyntaxError
	if !errors.As(err, &se) || se.Token != "ether" {
		t.Fatalf("err %v, want a syntax error at ether", err)
	}
}

// TestFilterOff: without a filter nothing is filtered, and the counters
// stay empty.
func TestFilterOff(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 64})
	start := time.Now()
	var n int
	for _, f := range filterFrames(t) {
		runFrames(t, d.objs.KflowTcxIngress, nil, f.bytes)
		n++
	}
	recs, _ := drainTest(t, d)
	var pkts uint64
	for _, r := range recs {
		pkts += r.Packets
		if r.Start.Before(start.Add(-time.Second)) {
			t.Errorf("record from before the run: %+v", r)
		}
	}
	if pkts != uint64(n) {
		t.Errorf("counted %d packets, ran %d", pkts, n)
	}
	if got, err := d.Filtered(); err != nil || len(got) != 0 {
		t.Errorf("filtered %+v %v, want none", got, err)
	}
}

// TestEndToEndFilter runs real traffic in network namespaces through the
// datapath with a capture filter: the flows it accepts are counted
// exactly as the capture saw them, and the packets and octets of the
// flows it rejects are exactly in the filtered counters of the
// interface and direction.
func TestEndToEndFilter(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, hook := range []Hook{HookAuto, HookXDP} {
		t.Run(cmp.Or(string(hook), "auto"), func(t *testing.T) {
			p := testenv.NewPair(t)
			// Only the test's own flows can be left out: the kernel's IPv6
			// housekeeping (link-local) is accepted, and not compared.
			expr := fmt.Sprintf("not (udp port 5001 or (icmp6 and host %s) or tcp dst port 5004)", p.A6)
			prog, err := pcapfilter.Compile(expr)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Load(Config{Filter: expr})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			attachIn(t, d, p, hook)
			capture, err := testenv.StartCapture(p.B, p.BIndex, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range []func() (testenv.Truth, error){
				func() (testenv.Truth, error) { return p.UDPEcho(false, 40001, 5001, []int{0, 100, 1472}) },
				func() (testenv.Truth, error) { return p.UDPEcho(true, 40002, 5002, []int{1, 1000}) },
				func() (testenv.Truth, error) { return p.Ping(false, 3, 56) },
				func() (testenv.Truth, error) { return p.Ping(true, 3, 8) },
			} {
				if _, err := run(); err != nil {
					t.Fatal(err)
				}
			}
			for i, v6 := range []bool{false, true} {
				if _, err := p.TCPSession(v6, uint16(5003+i), []int{1, 5000, 20000}); err != nil {
					t.Fatal(err)
				}
			}
			truth, err := capture.Stop()
			if err != nil {
				t.Fatal(err)
			}
			truth = p.OwnFlows(truth)
			recs, st, err := d.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			accepted := testenv.Truth{}
			rejected := map[flow.Direction]FilteredCount{}
			for k, c := range truth {
				pkt := pcapfilter.Packet{Version: 4, Src: k.Src, Dst: k.Dst, Proto: k.Proto, SrcPort: k.SrcPort, DstPort: k.DstPort,
					Ports: k.Proto == flow.ProtoTCP || k.Proto == flow.ProtoUDP}
				if k.Src.Is6() {
					pkt.Version = 6
				}
				if prog.Match(&pkt) {
					accepted[k] = c
					continue
				}
				r := rejected[k.Dir]
				r.Packets += c.Packets
				r.Octets += c.Octets
				rejected[k.Dir] = r
			}
			if len(rejected) != 2 || len(accepted) < 6 {
				t.Fatalf("the filter should leave out flows in both directions and keep others: kept %d flows, left out %+v", len(accepted), rejected)
			}
			compareTruth(t, "flows the filter kept", testenv.Sum(ours(p, recs)), accepted)
			got, err := d.Filtered()
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
				want := rejected[dir]
				want.Ifindex, want.Direction = uint32(p.AIndex), dir
				if c := filteredDelta(nil, got, uint32(p.AIndex), dir); c.Packets != want.Packets || c.Octets != want.Octets {
					t.Errorf("filtered %s: %d packets %d octets, left out %d packets %d octets", dir, c.Packets, c.Octets, want.Packets, want.Octets)
				}
			}
			if st.IgnoredPackets != 0 || st.UnparsedPackets != 0 {
				t.Errorf("unexpected datapath stats %+v", st)
			}
			t.Logf("kept %d flows; left out %d/%d packets in/out", len(accepted), rejected[flow.Ingress].Packets, rejected[flow.Egress].Packets)
		})
	}
}

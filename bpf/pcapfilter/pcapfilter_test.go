// SPDX-License-Identifier: Apache-2.0

package pcapfilter

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/collector/filter"
)

// Test packets.
var (
	udp4   = Packet{Version: 4, Src: ip("198.18.0.1"), Dst: ip("198.19.255.2"), Proto: 17, SrcPort: 40000, DstPort: 53, Ports: true}
	tcp4   = Packet{Version: 4, Src: ip("198.18.1.1"), Dst: ip("198.18.2.2"), Proto: 6, SrcPort: 22, DstPort: 50000, Ports: true}
	tcp6   = Packet{Version: 6, Src: ip("fd00::1"), Dst: ip("fd00:0:0:ffff::2"), Proto: 6, SrcPort: 50001, DstPort: 443, Ports: true}
	icmp4  = Packet{Version: 4, Src: ip("198.18.0.1"), Dst: ip("198.18.0.2"), Proto: 1}
	icmp6  = Packet{Version: 6, Src: ip("fd00::1"), Dst: ip("fd00::2"), Proto: 58}
	frag4  = Packet{Version: 4, Src: ip("198.18.0.1"), Dst: ip("198.19.255.2"), Proto: 17} // non-first fragment
	vlan10 = Packet{Version: 4, Src: ip("198.18.0.1"), Dst: ip("198.18.0.2"), Proto: 17, SrcPort: 1, DstPort: 2, Ports: true, VLAN: 10}
	gre6   = Packet{Version: 6, Src: ip("fd00::1"), Dst: ip("fd00::2"), Proto: 47}
	sctp4  = Packet{Version: 4, Src: ip("198.18.0.1"), Dst: ip("198.18.0.2"), Proto: 132, SrcPort: 5000, DstPort: 36412, Ports: true}
	mapped = Packet{Version: 6, Src: ip("::ffff:198.18.0.1"), Dst: ip("fd00::2"), Proto: 17, SrcPort: 1, DstPort: 2, Ports: true}
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

var allPackets = map[string]*Packet{"udp4": &udp4, "tcp4": &tcp4, "tcp6": &tcp6, "icmp4": &icmp4, "icmp6": &icmp6,
	"frag4": &frag4, "vlan10": &vlan10, "gre6": &gre6, "sctp4": &sctp4, "mapped": &mapped}

// TestPrimitives lists, for each filter, exactly the test packets it
// accepts.
func TestPrimitives(t *testing.T) {
	for _, c := range []struct {
		expr string
		want string // names of the accepted packets, space separated
	}{
		{"", "udp4 tcp4 tcp6 icmp4 icmp6 frag4 vlan10 gre6 sctp4 mapped"},
		{"host 198.18.0.1", "udp4 icmp4 frag4 vlan10 sctp4"},
		{"src host 198.18.0.1", "udp4 icmp4 frag4 vlan10 sctp4"},
		{"dst host 198.18.0.1", ""},
		{"dst 198.18.0.2", "icmp4 vlan10 sctp4"},
		{"198.18.0.2", "icmp4 vlan10 sctp4"},
		{"host fd00::1", "tcp6 icmp6 gre6"},
		{"dst host fd00:0:0:ffff::2", "tcp6"},
		{"src or dst host 198.19.255.2", "udp4 frag4"},
		{"src and dst host 198.18.0.1", ""},
		{"net 198.18.0.0/16", "udp4 tcp4 icmp4 frag4 vlan10 sctp4"},
		{"net 198.18", "udp4 tcp4 icmp4 frag4 vlan10 sctp4"},
		{"net 198.18.2", "tcp4"},
		{"dst net 198.19.0.0/16", "udp4 frag4"},
		{"net 198.18.0.0 mask 255.254.0.0", "udp4 tcp4 icmp4 frag4 vlan10 sctp4"},
		{"net 198.18.0.0 mask 255.255.0.255", ""},
		{"net fd00::/16", "tcp6 icmp6 gre6 mapped"},
		{"src net fd00::/64", "tcp6 icmp6 gre6"},
		{"dst net fd00:0:0:ffff::/64", "tcp6"},
		{"ip6 net ::ffff:0:0/96", "mapped"},
		{"host ::ffff:198.18.0.1", "mapped"},
		{"port 53", "udp4"},
		{"src port 22", "tcp4"},
		{"dst port 443", "tcp6"},
		{"port 443 or 53", "udp4 tcp6"},
		{"port domain", "udp4"},
		{"tcp port 53", ""},
		{"udp port 53", "udp4"},
		{"udp dst port 53 or 443", "udp4"},
		{"portrange 40000-50001", "udp4 tcp4 tcp6"},
		{"src portrange 50001-40000", "udp4 tcp6"},
		{"dst portrange 1-100", "udp4 vlan10 mapped"},
		{"port 36412", "sctp4"},
		{"sctp", "sctp4"},
		{"tcp", "tcp4 tcp6"},
		{"udp", "udp4 frag4 vlan10 mapped"},
		{"icmp", "icmp4"},
		{"icmp6", "icmp6"},
		{"proto 47", "gre6"},
		{"ip6 proto 47", "gre6"},
		{"ip proto 47", ""},
		{"proto \\tcp", "tcp4 tcp6"},
		{"proto udp or 6", "udp4 tcp4 tcp6 frag4 vlan10 mapped"},
		{"ip", "udp4 tcp4 icmp4 frag4 vlan10 sctp4"},
		{"ip6", "tcp6 icmp6 gre6 mapped"},
		{"vlan", "vlan10"},
		{"vlan 10", "vlan10"},
		{"vlan 11", ""},
		{"not vlan", "udp4 tcp4 tcp6 icmp4 icmp6 frag4 gre6 sctp4 mapped"},
		{"not ip", "tcp6 icmp6 gre6 mapped"},
		{"! tcp && ! udp", "icmp4 icmp6 gre6 sctp4"},
		{"tcp or udp and ip6", "tcp6 mapped"}, // left to right: (tcp or udp) and ip6
		{"tcp or (udp and ip6)", "tcp4 tcp6 mapped"},
		{"not (host 198.18.0.1 or net fd00::/16) and ip", "tcp4"},
		{"ip host 198.18.0.1 || ip6 host fd00::2", "udp4 icmp4 frag4 vlan10 sctp4 icmp6 gre6 mapped"},
		{"host 198.18.0.1 and not port 53", "icmp4 frag4 vlan10 sctp4"},
	} {
		prog, err := Compile(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		want := map[string]bool{}
		for _, w := range strings.Fields(c.want) {
			want[w] = true
		}
		for name, p := range allPackets {
			if got := prog.Match(p); got != want[name] {
				t.Errorf("%q on %s: match %v, want %v", c.expr, name, got, want[name])
			}
		}
	}
}

// TestErrors checks that a bad filter is refused with the column of the
// offending token, and that unsupported primitives say so.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		expr, token, msg string
	}{
		{"host", "", "expected a value"},
		{"host 198.18.0.1 and", "", "expected a primitive"},
		{"host 198.18.0.1 or or", "or", "expected a value"},
		{"(tcp", "", "expected )"},
		{"tcp)", ")", "expected and, or"},
		{"port 99999", "99999", "not a port number"},
		{"port nosuchservice", "nosuchservice", "unknown service"},
		{"net 10.0.0.1/8", "10.0.0.1/8", "bits set past"},
		{"host 10.0.0.0/8", "10.0.0.0/8", "write net"},
		{"host example.com", "example.com", "host names are not resolved"},
		{"ether host 02:00:00:00:00:01", "ether", "unsupported primitive"},
		{"tcp and less 100", "less", "unsupported primitive"},
		{"tcp[13] & 2 != 0", "[", "unsupported primitive"},
		{"arp", "arp", "unsupported primitive"},
		{"tcp host 198.18.0.1", "tcp", "applies to port"},
		{"ip6 host 198.18.0.1", "198.18.0.1", "ip6 with an IPv4"},
		{"vlan 5000", "5000", "not a VLAN id"},
		{"proto 300", "300", "not a protocol"},
		{"net fd00::/16 mask 255.0.0.0", "255.0.0.0", "mask takes"},
		{"net 10.0.0.0 mask 255.0.0.0 and net 10.1.0.0 mask 255.0.0.0", "10.1.0.0", "outside the mask"},
	} {
		_, err := Compile(c.expr)
		var se *filter.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a *filter.SyntaxError", c.expr, err)
			continue
		}
		if se.Token != c.token || !strings.Contains(se.Msg, c.msg) || strings.Index(c.expr[se.Offset:], c.token) != 0 {
			t.Errorf("%q: error at offset %d token %q: %s; want token %q and %q\n%s", c.expr, se.Offset, se.Token, se.Msg, c.token, c.msg, se.Caret())
		}
	}
}

// TestTooLong: the datapath runs at most MaxInsns tests.
func TestTooLong(t *testing.T) {
	var parts []string
	for i := range 33 {
		parts = append(parts, "host 198.18.0."+string(rune('0'+i%10)))
	}
	if _, err := Compile(strings.Join(parts, " or ")); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("66 tests: err %v", err)
	}
	if _, err := Compile(strings.Join(parts[:32], " or ")); err != nil {
		t.Errorf("64 tests: %v", err)
	}
}

// randomPacket builds packets around the addresses and ports the filters
// of the property test use.
func randomPacket(r *rand.Rand) Packet {
	addrs := []netip.Addr{ip("198.18.0.1"), ip("198.18.0.2"), ip("198.19.1.1"), ip("fd00::1"), ip("fd00::2"), ip("fd01::1")}
	p := Packet{Src: addrs[r.IntN(len(addrs))], Dst: addrs[r.IntN(len(addrs))]}
	if p.Src.Is4() != p.Dst.Is4() {
		p.Dst = p.Src
	}
	p.Version = 6
	if p.Src.Is4() {
		p.Version = 4
	}
	p.Proto = []uint8{1, 6, 17, 58, 132, 47}[r.IntN(6)]
	p.Ports = portProto(p.Proto) && r.IntN(8) != 0
	if p.Ports {
		p.SrcPort, p.DstPort = []uint16{22, 53, 80, 443}[r.IntN(4)], []uint16{22, 53, 80, 443, 9000}[r.IntN(5)]
	}
	if r.IntN(3) == 0 {
		p.VLAN = uint16(1 + r.IntN(3))
	}
	return p
}

// TestCompiledEqualsTree checks the compiler against the parse tree:
// random filters built from the primitives, evaluated on random packets,
// give the same answer compiled (as the datapath runs them) and as trees.
func TestCompiledEqualsTree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prims := []string{"host 198.18.0.1", "src net 198.18.0.0/16", "dst host fd00::2", "net fd00::/16", "port 53",
		"src port 22", "dst portrange 80-443", "tcp", "udp", "icmp", "ip", "ip6", "vlan 2", "vlan", "proto 47",
		"tcp dst port 443", "src and dst net 198.18.0.0/15"}
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth == 0 || r.IntN(3) == 0 {
			return prims[r.IntN(len(prims))]
		}
		switch r.IntN(4) {
		case 0:
			return "not " + gen(depth-1)
		case 1:
			return "(" + gen(depth-1) + ")"
		case 2:
			return gen(depth-1) + " and " + gen(depth-1)
		}
		return gen(depth-1) + " or " + gen(depth-1)
	}
	for range 2000 {
		expr := gen(4)
		tree, err := parse(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		prog, err := Compile(expr)
		if err != nil {
			if strings.Contains(err.Error(), "at most") {
				continue
			}
			t.Fatalf("%q: %v", expr, err)
		}
		for range 50 {
			p := randomPacket(r)
			if a, b := prog.Match(&p), tree.eval(&p); a != b {
				t.Fatalf("%q on %+v: compiled %v, tree %v\nprogram %+v", expr, p, a, b, prog)
			}
		}
	}
}

// FuzzCompile: any input either fails with a syntax error or compiles to
// a program the datapath accepts (Check) that agrees with its tree.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"host 198.18.0.1", "not (tcp port 22 or udp dst portrange 1-1024) and ip6",
		"net 10 mask 255.0.0.0", "vlan 10 && !icmp", "src or dst net fd00::/8", "proto \\udp or 6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		prog, err := Compile(expr)
		if err != nil {
			var se *filter.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%q: error %v is not a syntax error", expr, err)
			}
			return
		}
		if err := prog.Check(); err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		tree, _ := parse(expr)
		if tree == nil {
			return
		}
		r := rand.New(rand.NewPCG(uint64(len(expr)), 7))
		for range 20 {
			p := randomPacket(r)
			if prog.Match(&p) != tree.eval(&p) {
				t.Fatalf("%q: compiled and tree disagree on %+v", expr, p)
			}
		}
	})
}

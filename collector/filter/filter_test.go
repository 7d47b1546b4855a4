// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// Records the table tests match against.
var (
	web = flow.Record{ // a client's HTTPS request
		Src: netip.MustParseAddr("198.18.0.10"), Dst: netip.MustParseAddr("198.19.5.1"),
		SrcPort: 40000, DstPort: 443, Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn | flow.TCPAck | flow.TCPFin,
		Packets: 10, Octets: 5000, Start: t0, End: t0.Add(2 * time.Second), InIf: 2, OutIf: 3, TOS: 0x20,
		VLAN: 7, Exporter: netip.MustParseAddr("198.18.255.1"), Direction: flow.Egress,
	}
	dns = flow.Record{
		Src: netip.MustParseAddr("fd00::10"), Dst: netip.MustParseAddr("fd00::53"),
		SrcPort: 50000, DstPort: 53, Proto: flow.ProtoUDP, Packets: 1, Octets: 80, Start: t0, End: t0,
		InIf: 3, OutIf: 2, ObservationDomain: 258, // NetFlow v5 engine type 1, id 2
	}
	ping = flow.Record{
		Src: netip.MustParseAddr("198.18.0.10"), Dst: netip.MustParseAddr("198.18.0.1"),
		Proto: flow.ProtoICMP, ICMPType: 8, Packets: 4, Octets: 336, Start: t0, End: t0.Add(3 * time.Second),
	}
	syn = flow.Record{
		Src: netip.MustParseAddr("198.19.9.9"), Dst: netip.MustParseAddr("198.18.0.10"),
		SrcPort: 12345, DstPort: 22, Proto: flow.ProtoTCP, TCPFlags: flow.TCPSyn, Packets: 1, Octets: 60,
		Start: t0, End: t0,
	}
)

func TestMatch(t *testing.T) {
	recs := map[string]*flow.Record{"web": &web, "dns": &dns, "ping": &ping, "syn": &syn}
	for _, tt := range []struct {
		filter string
		want   string // names of the matching records, sorted: dns ping syn web
	}{
		{"", "dns ping syn web"},
		{"any", "dns ping syn web"},
		{"engine-type 1", "dns"},
		{"engine-id 2 and engine-type 1", "dns"},
		{"engine-id 0", "ping syn web"},
		{"observation domain id 258", "dns"},
		{"observation domain id > 0", "dns"},
		{"# only a comment\n", "dns ping syn web"},
		{"proto tcp", "syn web"},
		{"PROTO TCP", "syn web"},
		{"proto 17", "dns"},
		{"proto icmp", "ping"},
		{"ipv6", "dns"},
		{"inet6", "dns"},
		{"ipv4", "ping syn web"},
		{"inet", "ping syn web"},
		{"host 198.18.0.10", "ping syn web"},
		{"ip 198.18.0.10", "ping syn web"},
		{"src ip 198.18.0.10", "ping web"},
		{"dst host 198.18.0.10", "syn"},
		{"src and dst net 198.18.0.0/16", "ping"},
		{"src or dst net 198.19.0.0/16", "syn web"},
		{"net 198.19.0.0/16", "syn web"},
		{"net 198.19/16", "syn web"},
		{"net 198.19.0.0 255.255.0.0", "syn web"},
		{"dst net fd00::/64", "dns"},
		{"net ::ffff:198.19.0.0/112", "syn web"},
		{"ip in [ 198.19.5.1 fd00::53 ]", "dns web"},
		{"src ip in [198.19.0.0/16, fd00::10]", "dns syn"},
		{"port 443", "web"},
		{"port = 443", "web"},
		{"port == 443", "web"},
		{"port eq 443", "web"},
		{"dst port > 1024", "ping"}, // ICMP: type*256+code
		{"dst port gt 52", "dns ping web"},
		{"src port < 40000", "ping syn"},
		{"src port lt 40000", "ping syn"},
		{"src port >= 40000", "dns web"},
		{"src port ge 40000", "dns web"},
		{"src port <= 12345", "ping syn"},
		{"src port le 12345", "ping syn"},
		{"port != 443", "dns ping syn web"}, // either port
		{"not port 443", "dns ping syn"},
		{"port in [ 22 53 ]", "dns syn"},
		{"dst port 2048", "ping"}, // ICMP echo: type 8, code 0
		{"icmp-type 8", "ping"},
		{"icmp-code 0", "ping"},
		{"flags S", "syn web"},
		{"flags SA", "web"},
		{"flags AS", "web"},
		{"flags S and not flags AFRPU", "syn"},
		{"not flags AF", "dns ping syn"}, // neither A nor F
		{"not (flags SA)", "dns ping"},
		{"not not flags SA", "web"},
		{"flags X", ""},
		{"tos 32", "web"},
		{"tos > 0", "web"},
		{"vlan 7", "web"},
		{"in if 3", "dns"},
		{"out if 3", "web"},
		{"if 3", "dns web"},
		{"packets > 3", "ping web"},
		{"packets 1", "dns syn"},
		{"bytes > 1k", "web"},
		{"bytes >= 5K", "web"},
		{"bytes < 0.1k", ""}, // not a number: see TestErrors
		{"duration > 2500", "ping"},
		{"duration 0", "dns syn"},
		{"pps 5", "web"},
		{"bps 20000", "web"},
		{"bps > 10k", "web"},
		{"bpp 500", "web"},
		{"bpp < 100", "dns ping syn"},
		{"flows 1", "dns ping syn web"},
		{"exporter 198.18.255.1", "web"},
		{"router ip 198.18.255.1", "web"},
		{"flowdir egress", "web"},
		{"flowdir 0", "dns ping syn"},
		{"proto tcp and port 22", "syn"},
		{"proto tcp && port 22", "syn"},
		{"proto udp or proto icmp", "dns ping"},
		{"proto udp || proto icmp", "dns ping"},
		{"not proto tcp", "dns ping"},
		{"! proto tcp", "dns ping"},
		{"!proto tcp", "dns ping"},
		{"(proto udp or proto tcp) and not port 53", "syn web"},
		{"proto tcp and (port 22 or port 443) and bytes > 100", "web"},
		{"proto tcp or proto udp and port 53", "dns syn web"}, // and binds tighter
		{"src port 12345 or dst port 53 # the scanner and DNS", "dns syn"},
	} {
		if strings.Contains(tt.filter, "0.1k") {
			continue
		}
		f, err := Parse(tt.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.filter, err)
			continue
		}
		var got []string
		for _, name := range []string{"dns", "ping", "syn", "web"} {
			if f.Match(recs[name]) {
				got = append(got, name)
			}
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%q matches %q, want %q", tt.filter, g, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		filter string
		col    int
		token  string
		msg    string
	}{
		{"proto tcp and", 14, "", "unexpected end of filter"},
		{"port 99999", 6, "99999", "out of range"},
		{"proto tcp and port 99999", 20, "99999", "out of range"},
		{"proto foo", 7, "foo", "not a number"},
		{"bogus 1", 1, "bogus", "unknown filter primitive"},
		{"host 1.2.3", 6, "1.2.3", "not an IP address"},
		{"net 10.0.0.0/33", 5, "10.0.0.0/33", "prefix length"},
		{"net 10.0.0.0 255.0.255.0", 14, "255.0.255.0", "not a netmask"},
		{"(proto tcp", 11, "", "want )"},
		{"proto tcp)", 10, ")", "unexpected \")\""},
		{"proto tcp & port 22", 11, "&", "use &&"},
		{"flags SQ", 8, "Q", "unknown TCP flag"},
		{"port in [ ]", 11, "]", "empty list"},
		{"port in 22", 9, "22", "want ["},
		{"src proto tcp", 5, "proto", "after src"},
		{"bytes < 0.1k", 9, "0.1k", "not a number"},
		{"packets > ", 11, "", "want a number"},
		{"out bytes 5", 5, "bytes", "bidirectional"},
		{"flowdir sideways", 9, "sideways", "want ingress"},
		{"proto tcp and\n  port 99999", 8, "99999", "line 2 column 8"},
		{"port 22 \x7f", 9, "\x7f", "unexpected character"},
		{strings.Repeat("(", 300) + "any" + strings.Repeat(")", 300), 257, "(", "nested deeper"},
	} {
		_, err := Parse(tt.filter)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q): %v, want a *SyntaxError", tt.filter, err)
			continue
		}
		if se.Column != tt.col || se.Token != tt.token || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Parse(%q): column %d token %q %q, want column %d token %q containing %q",
				tt.filter, se.Column, se.Token, err, tt.col, tt.token, tt.msg)
		}
	}
}

func TestCaret(t *testing.T) {
	_, err := Parse("proto tcp and port 99999")
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatal(err)
	}
	want := "proto tcp and port 99999\n                   ^^^^^"
	if got := se.Caret(); got != want {
		t.Errorf("caret:\n%s\nwant:\n%s", got, want)
	}
	_, err = Parse("proto tcp and\n\tport 99999 # two lines")
	if !errors.As(err, &se) {
		t.Fatal(err)
	}
	want = " port 99999 # two lines\n      ^^^^^"
	if got := se.Caret(); got != want {
		t.Errorf("caret:\n%q\nwant:\n%q", got, want)
	}
}

// TestNoAlloc checks that matching allocates nothing.
func TestNoAlloc(t *testing.T) {
	f := MustParse("(proto tcp and src net 198.18.0.0/15 and not flags R) or port in [53 123] or ip in [fd00::53] or bps > 1m")
	n := testing.AllocsPerRun(100, func() {
		f.Match(&web)
		f.Match(&dns)
		f.Match(&ping)
	})
	if n != 0 {
		t.Errorf("%v allocations per match", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	f := MustParse("proto tcp and src net 198.18.0.0/15 and dst port in [80 443] and bytes > 1k")
	recs := []*flow.Record{&web, &dns, &ping, &syn}
	n := 0
	for b.Loop() {
		for _, r := range recs {
			if f.Match(r) {
				n++
			}
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// TestIdent: "ident NAME" tests the ident of the record's file, whole and
// case sensitive; '#' inside a word is part of it (nfcapd's
// "Exporter_#1"), at a token's start it begins a comment.
func TestIdent(t *testing.T) {
	a, b := web, web
	a.Ident, b.Ident = "Exporter_#1", "exporter_#1"
	for _, tc := range []struct {
		src  string
		a, b bool
	}{
		{"ident Exporter_#1", true, false},
		{"ident exporter_#1", false, true},
		{"ident Exporter_", false, false},
		{"not ident Exporter_#1 and proto tcp", false, true},
		{"ident Exporter_#1 or ident exporter_#1 # both", true, true},
		{"ident Exporter_#1 and port 443", true, false},
	} {
		f, err := Parse(tc.src)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if f.Match(&a) != tc.a || f.Match(&b) != tc.b {
			t.Errorf("%q: %v %v, want %v %v", tc.src, f.Match(&a), f.Match(&b), tc.a, tc.b)
		}
	}
	if e := MustParse("ident x").Expr(); e != (Ident{Name: "x"}) {
		t.Errorf("Expr: %#v", e)
	}
	if _, err := Parse("ident"); err == nil {
		t.Error("ident without a name parsed")
	}
}

// TestHostNames: a host name is resolved once, at parse time, to every
// address it has; Reverse keeps those addresses.
func TestHostNames(t *testing.T) {
	lookups := 0
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		lookups++
		if host != "gw.example" {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []netip.Addr{netip.MustParseAddr("::ffff:198.18.0.1"), netip.MustParseAddr("fd00::1")}, nil
	}
	f, err := ParseWith("src host gw.example and proto udp", resolve)
	if err != nil {
		t.Fatal(err)
	}
	v4 := flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: flow.ProtoUDP}
	v6 := flow.Record{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: flow.ProtoUDP}
	other := flow.Record{Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1"), Proto: flow.ProtoUDP}
	if !f.Match(&v4) || !f.Match(&v6) || f.Match(&other) {
		t.Errorf("src host gw.example: %v %v %v", f.Match(&v4), f.Match(&v6), f.Match(&other))
	}
	if r := f.Reverse(); !r.Match(&other) || r.Match(&v4) || lookups != 1 {
		t.Errorf("reverse: %v %v after %d lookups", r.Match(&other), r.Match(&v4), lookups)
	}
	if _, err := ParseWith("host nowhere.example", resolve); err == nil || !strings.Contains(err.Error(), "no such host nowhere.example") {
		t.Errorf("unresolved name: %v", err)
	}
	// The system's resolver: localhost is the loopback address.
	f, err = Parse("host localhost")
	if err != nil {
		t.Fatal(err)
	}
	lo := flow.Record{Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("198.18.0.1")}
	if !f.Match(&lo) {
		t.Errorf("host localhost does not match 127.0.0.1")
	}
}

// TestNotStored: nfdump's primitives of fields kflow does not store are
// refused with that reason.
func TestNotStored(t *testing.T) {
	for _, s := range []string{"bgpnext ip 198.18.0.1", "src mac 00:11:22:33:44:55", "mpls label1 3", "nat event add", "vrf 1"} {
		_, err := Parse(s)
		if err == nil || !strings.Contains(err.Error(), "not stored by kflow") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package service

import (
	"net/netip"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

func TestName(t *testing.T) {
	for _, c := range []struct {
		proto uint8
		port  uint16
		want  string
	}{
		{flow.ProtoTCP, 443, "https"}, {flow.ProtoUDP, 53, "domain"}, {flow.ProtoTCP, 22, "ssh"}, {flow.ProtoTCP, 1, "tcpmux"},
		{flow.ProtoTCP, 40000, ""}, {flow.ProtoTCP, 0, ""}, {flow.ProtoICMP, 443, ""}, {flow.ProtoSCTP, 5672, "amqp"},
	} {
		if got := Name(c.proto, c.port); got != c.want {
			t.Errorf("Name(%d, %d) = %q, want %q", c.proto, c.port, got, c.want)
		}
	}
	for i := 1; i < len(table); i++ {
		a, b := table[i-1], table[i]
		if a.proto > b.proto || a.proto == b.proto && a.port >= b.port {
			t.Fatalf("table not sorted at %d: %v %v", i, a, b)
		}
	}
}

func TestOf(t *testing.T) {
	a := netip.MustParseAddr
	for _, c := range []struct {
		r    flow.Record
		want string
	}{
		{flow.Record{Src: a("198.18.0.10"), Dst: a("198.19.5.1"), SrcPort: 40000, DstPort: 443, Proto: flow.ProtoTCP}, "https/tcp"},
		{flow.Record{Src: a("198.19.5.1"), Dst: a("198.18.0.10"), SrcPort: 443, DstPort: 40000, Proto: flow.ProtoTCP}, "https/tcp"},
		{flow.Record{SrcPort: 40000, DstPort: 40001, Proto: flow.ProtoUDP}, "40001/udp"},
		{flow.Record{SrcPort: 53, DstPort: 22, Proto: flow.ProtoUDP}, "domain/udp"}, // 22/udp has no name in the table
		{flow.Record{Proto: flow.ProtoICMP, ICMPType: 8}, "ICMP"},
		{flow.Record{Proto: 47}, "GRE"},
	} {
		if got := Text(c.r.Proto, Of(&c.r)); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}

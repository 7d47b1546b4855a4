// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// conn is a connection seen on interface 3: the client's packets leave
// (egress), the server's arrive (ingress).
type conn struct {
	client, server         netip.Addr
	cport, sport           uint16
	proto                  uint8
	icmpType, icmpReplyTyp uint8
}

var web = conn{client: netip.MustParseAddr("198.18.0.1"), server: netip.MustParseAddr("198.19.0.2"),
	cport: 40000, sport: 443, proto: flow.ProtoTCP}

// out is a delta of the client's direction, in of the server's.
func (c conn) out(first, last time.Duration, packets uint64, flags uint16) flow.Record {
	return flow.Record{Src: c.client, Dst: c.server, SrcPort: c.cport, DstPort: c.sport, Proto: c.proto,
		ICMPType: c.icmpType, OutIf: 3, Direction: flow.Egress, Packets: packets, Octets: 100 * packets,
		Start: at(first), End: at(last), TCPFlags: flags, MinTTL: 64, MaxTTL: 64}
}

func (c conn) in(first, last time.Duration, packets uint64, flags uint16) flow.Record {
	return flow.Record{Src: c.server, Dst: c.client, SrcPort: c.sport, DstPort: c.cport, Proto: c.proto,
		ICMPType: c.icmpReplyTyp, InIf: 3, Direction: flow.Ingress, Packets: packets, Octets: 60 * packets,
		Start: at(first), End: at(last), TCPFlags: flags, MinTTL: 60, MaxTTL: 60}
}

// reverseOf reports whether b is the other direction of a's flow.
func reverseOf(a, b *flow.Record) bool {
	// An ICMP type without a reply keeps its type (the record of the
	// other direction is then empty).
	t, ok := flow.ICMPReplyType(a.Proto, a.ICMPType)
	if !a.IsICMP() || !ok {
		t = a.ICMPType
	}
	return a.Src == b.Dst && a.Dst == b.Src && a.SrcPort == b.DstPort && a.DstPort == b.SrcPort &&
		a.InIf == b.OutIf && a.OutIf == b.InIf && a.Direction != b.Direction && a.Proto == b.Proto &&
		b.ICMPType == t && a.VLAN == b.VLAN && a.EndReason == b.EndReason
}

func biflowCache(t *testing.T) *Cache {
	return newCache(t, Config{Biflow: true, IdleTimeout: 15 * time.Second, ActiveTimeout: 60 * time.Second, EndGrace: 2 * time.Second})
}

// pairs checks that records come in (initiator, responder) pairs and
// returns them.
func pairs(t *testing.T, recs []flow.Record) [][2]flow.Record {
	t.Helper()
	if len(recs)%2 != 0 {
		t.Fatalf("%d records: not pairs", len(recs))
	}
	var out [][2]flow.Record
	for i := 0; i < len(recs); i += 2 {
		if !reverseOf(&recs[i], &recs[i+1]) {
			t.Fatalf("record %d is not the reverse of record %d:\n%+v\n%+v", i+1, i, recs[i+1], recs[i])
		}
		out = append(out, [2]flow.Record{recs[i], recs[i+1]})
	}
	return out
}

func TestBiflowPairs(t *testing.T) {
	const s = time.Second
	syn, synAck := flow.TCPSyn|flow.TCPSynNoAck, flow.TCPSyn|flow.TCPAck
	for _, c := range []struct {
		name      string
		deltas    []flow.Record
		initiator string // "client" or "server"
	}{
		// The server's delta comes first in the drain, and its first
		// packet in the same tick as the client's: the SYN decides.
		{"syn wins", []flow.Record{web.in(0, s, 3, synAck|flow.TCPPsh), web.out(0, s, 4, syn|flow.TCPAck)}, "client"},
		{"syn wins over an earlier packet", []flow.Record{web.in(0, s, 3, synAck), web.out(s/2, s, 4, syn)}, "client"},
		{"first packet", []flow.Record{web.in(s/2, s, 3, flow.TCPAck), web.out(0, s, 4, flow.TCPAck)}, "client"},
		{"first packet, other order", []flow.Record{web.out(0, s, 4, flow.TCPAck), web.in(s/2, s, 3, flow.TCPAck)}, "client"},
		{"server spoke first", []flow.Record{web.out(s/2, s, 4, flow.TCPAck), web.in(0, s, 3, flow.TCPAck)}, "server"},
		{"same tick: the higher port", []flow.Record{web.in(0, s, 3, flow.TCPAck), web.out(0, s, 4, flow.TCPAck)}, "client"},
		// A direction may come in several deltas of one drain (the
		// datapath's per-CPU flow cache, ring buffer events): the
		// initiator is decided on all of them, in any order.
		{"syn in the client's second delta", []flow.Record{web.in(0, s, 3, synAck), web.out(s/2, s, 2, flow.TCPAck),
			web.out(0, s/2, 2, syn)}, "client"},
		{"first packet in the client's second delta", []flow.Record{web.in(s/4, s, 3, flow.TCPAck),
			web.out(s/2, s, 2, flow.TCPAck), web.out(0, s/4, 2, flow.TCPAck)}, "client"},
		{"first packet in the server's second delta", []flow.Record{web.out(s/2, s, 4, flow.TCPAck),
			web.in(s, s, 1, flow.TCPAck), web.in(0, s/2, 2, flow.TCPAck)}, "server"},
		{"syn in the server's second delta", []flow.Record{web.out(0, s, 4, synAck),
			web.in(s/2, s, 1, flow.TCPAck), web.in(s/2, s/2, 2, syn)}, "server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca := biflowCache(t)
			var got sink
			ca.Merge(c.deltas, got.emit)
			ca.Expire(at(20*s), got.emit)
			ps := pairs(t, got)
			if len(ps) != 1 {
				t.Fatalf("%d biflows, want 1: %+v", len(ps), got)
			}
			ini, resp := ps[0][0], ps[0][1]
			client, server := ini, resp
			if c.initiator == "server" {
				client, server = resp, ini
			}
			if ini.Src != map[string]netip.Addr{"client": web.client, "server": web.server}[c.initiator] {
				t.Errorf("initiator %v, want the %s", ini.Src, c.initiator)
			}
			if client.Packets != 4 || client.Octets != 400 || server.Packets != 3 || server.Octets != 180 {
				t.Errorf("client %d/%d server %d/%d, want 4/400 and 3/180", client.Packets, client.Octets, server.Packets, server.Octets)
			}
			if client.TCPFlags&flow.TCPSynNoAck != 0 || server.TCPFlags&flow.TCPSynNoAck != 0 {
				t.Errorf("the SYN mark left the cache: %#x %#x", client.TCPFlags, server.TCPFlags)
			}
			if ini.EndReason != flow.EndIdle || client.Direction != flow.Egress || client.OutIf != 3 || server.InIf != 3 {
				t.Errorf("initiator %+v responder %+v", ini, resp)
			}
		})
	}
}

// TestBiflowExpiry: a biflow is idle when neither direction had a packet
// for the idle timeout, ends once either saw FIN, reports both at its
// active timeout.
func TestBiflowExpiry(t *testing.T) {
	const s = time.Second
	t.Run("idle counts both directions", func(t *testing.T) {
		c := biflowCache(t)
		var got sink
		c.Merge([]flow.Record{web.out(0, s, 1, flow.TCPAck), web.in(0, 10*s, 1, flow.TCPAck)}, got.emit)
		c.Expire(at(20*s), got.emit)
		if len(got) != 0 {
			t.Fatalf("expired while the server spoke 10 s ago: %+v", got)
		}
		c.Expire(at(26*s), got.emit)
		if ps := pairs(t, got); len(ps) != 1 || ps[0][0].EndReason != flow.EndIdle {
			t.Fatalf("want one idle biflow: %+v", got)
		}
	})
	t.Run("fin of one direction ends the pair", func(t *testing.T) {
		c := biflowCache(t)
		var got sink
		c.Merge([]flow.Record{web.out(0, s, 2, flow.TCPAck|flow.TCPFin), web.in(0, s, 2, flow.TCPAck)}, got.emit)
		c.Expire(at(4*s), got.emit)
		if ps := pairs(t, got); len(ps) != 1 || ps[0][0].EndReason != flow.EndOfFlow {
			t.Fatalf("want one end-of-flow biflow: %+v", got)
		}
	})
	t.Run("active timeout reports both, deltas after", func(t *testing.T) {
		c := biflowCache(t)
		var got sink
		c.Merge([]flow.Record{web.out(0, 50*s, 5, flow.TCPAck), web.in(s, 50*s, 6, flow.TCPAck)}, got.emit)
		c.Expire(at(61*s), got.emit)
		c.Merge([]flow.Record{web.in(62*s, 63*s, 2, flow.TCPAck)}, got.emit)
		c.Flush(got.emit)
		ps := pairs(t, got)
		if len(ps) != 2 || ps[0][0].EndReason != flow.EndActive || ps[1][0].EndReason != flow.EndForced {
			t.Fatalf("want an active report and a forced end: %+v", got)
		}
		if ps[0][0].Packets != 5 || ps[0][1].Packets != 6 || ps[1][0].Packets != 0 || ps[1][1].Packets != 2 {
			t.Errorf("packets %d/%d then %d/%d, want 5/6 then 0/2", ps[0][0].Packets, ps[0][1].Packets, ps[1][0].Packets, ps[1][1].Packets)
		}
		if !ps[1][0].Start.IsZero() || ps[1][0].Src != web.client {
			t.Errorf("an initiator without packets since the report: %+v", ps[1][0])
		}
	})
	t.Run("the responder opens a new biflow after the end", func(t *testing.T) {
		c := biflowCache(t)
		var got sink
		c.Merge([]flow.Record{web.out(0, s, 1, 0)}, got.emit)
		c.Expire(at(20*s), got.emit)
		c.Merge([]flow.Record{web.in(30*s, 31*s, 2, 0)}, got.emit)
		c.Flush(got.emit)
		ps := pairs(t, got)
		if len(ps) != 2 || ps[0][0].Src != web.client || ps[1][0].Src != web.server || ps[1][0].Packets != 2 {
			t.Fatalf("want the client's biflow, then one the server opened: %+v", got)
		}
	})
}

func TestBiflowICMP(t *testing.T) {
	ping := conn{client: web.client, server: web.server, proto: flow.ProtoICMP, icmpType: 8, icmpReplyTyp: 0}
	unreach := conn{client: web.client, server: web.server, proto: flow.ProtoICMP, icmpType: 3, icmpReplyTyp: 3}
	c := biflowCache(t)
	var got sink
	// The reply merged first, in the same tick as the request: the
	// request's side opened the exchange all the same.
	c.Merge([]flow.Record{ping.in(0, time.Second, 3, 0), ping.out(0, time.Second, 3, 0), unreach.in(0, 0, 1, 0)}, got.emit)
	c.Flush(got.emit)
	ps := pairs(t, got)
	if len(ps) != 2 {
		t.Fatalf("want the echo biflow and the unreachable alone: %+v", got)
	}
	for _, p := range ps {
		switch p[0].ICMPType {
		case 8:
			if p[0].Packets != 3 || p[1].Packets != 3 || p[1].ICMPType != 0 || p[0].Src != web.client {
				t.Errorf("echo biflow %+v", p)
			}
		case 0:
			t.Errorf("the echo reply initiated: %+v", p)
		case 3:
			if p[0].Packets != 1 || p[1].Packets != 0 {
				t.Errorf("unreachable %+v", p)
			}
		default:
			t.Errorf("biflow %+v", p)
		}
	}
}

// TestBiflowEach: flow list shows each direction of a biflow as its own
// flow.
func TestBiflowEach(t *testing.T) {
	c := biflowCache(t)
	c.Merge([]flow.Record{web.out(0, time.Second, 4, 0), web.in(0, time.Second, 3, 0)}, func(*flow.Record) { t.Fatal("nothing expires") })
	var got []flow.Record
	c.Each(func(r *flow.Record) { got = append(got, *r) })
	if len(got) != 2 || !reverseOf(&got[0], &got[1]) || got[0].Packets+got[1].Packets != 7 {
		t.Fatalf("Each: %+v", got)
	}
}

// TestBiflowConservationRandom merges random deltas of both directions
// of many connections: records come in pairs of reverse identities, every
// packet and octet of each direction comes out exactly once, and each end
// reason is justified by the pair's times.
func TestBiflowConservationRandom(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 0xb1f10))
		idle := time.Duration(1+rng.IntN(20)) * time.Second
		cfg := Config{Biflow: true, IdleTimeout: idle, ActiveTimeout: time.Duration(1+rng.IntN(60)) * time.Second,
			EndGrace: time.Duration(1+rng.Int64N(int64(idle))) * time.Nanosecond, MaxFlows: 1 + rng.IntN(300)}
		c := newCache(t, cfg)
		conns := make([]conn, 5+rng.IntN(500))
		for i := range conns {
			conns[i] = conn{client: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), server: netip.MustParseAddr("198.19.0.1"),
				cport: uint16(1024 + rng.IntN(60000)), sport: 443, proto: flow.ProtoTCP}
			if i%4 == 0 {
				conns[i].proto = flow.ProtoUDP
			}
		}
		type total struct{ packets, octets uint64 }
		in, out := map[keyOf]total{}, map[keyOf]total{}
		now := at(0)
		var pending []flow.Record
		emit := func(r *flow.Record) {
			pending = append(pending, *r)
			if len(pending) < 2 {
				return
			}
			a, b := pending[0], pending[1]
			pending = pending[:0]
			if !reverseOf(&a, &b) || a.Packets == 0 && b.Packets == 0 {
				t.Fatalf("seed %d: not a biflow:\n%+v\n%+v", seed, a, b)
			}
			var first, last time.Time
			for _, r := range []flow.Record{a, b} {
				if r.Packets == 0 {
					continue
				}
				if first.IsZero() || r.Start.Before(first) {
					first = r.Start
				}
				if r.End.After(last) {
					last = r.End
				}
				k := kof(&r)
				o := out[k]
				o.packets += r.Packets
				o.octets += r.Octets
				out[k] = o
			}
			switch a.EndReason {
			case flow.EndIdle:
				if last.Add(cfg.IdleTimeout).After(now) {
					t.Fatalf("seed %d: idle biflow ending %v at %v", seed, last, now)
				}
			case flow.EndActive:
				if first.Add(cfg.ActiveTimeout).After(now) {
					t.Fatalf("seed %d: active biflow starting %v at %v", seed, first, now)
				}
			case flow.EndOfFlow:
				if (a.TCPFlags|b.TCPFlags)&(flow.TCPFin|flow.TCPRst) == 0 {
					t.Fatalf("seed %d: end of flow without fin: %+v %+v", seed, a, b)
				}
			case flow.EndLackOfResources, flow.EndForced:
			default:
				t.Fatalf("seed %d: reason %v", seed, a.EndReason)
			}
		}
		for range 200 {
			prev := now
			now = now.Add(time.Duration(1 + rng.Int64N(int64(3*time.Second))))
			var batch []flow.Record
			seen := map[keyOf]bool{}
			for range rng.IntN(60) {
				cn := conns[rng.IntN(len(conns))]
				a := 1 + rng.Int64N(int64(now.Sub(prev)))
				b := a + rng.Int64N(int64(now.Sub(prev))-a+1)
				first, last := prev.Sub(t0)+time.Duration(a), prev.Sub(t0)+time.Duration(b)
				var flags uint16
				if cn.proto == flow.ProtoTCP && rng.IntN(25) == 0 {
					flags = flow.TCPFin
				}
				d := cn.out(first, last, 1+rng.Uint64N(50), flags)
				if rng.IntN(2) == 0 {
					d = cn.in(first, last, 1+rng.Uint64N(50), flags)
				}
				if cn.proto == flow.ProtoTCP && rng.IntN(10) == 0 {
					d.TCPFlags |= flow.TCPSyn | flow.TCPSynNoAck
				}
				if seen[kof(&d)] {
					continue
				}
				seen[kof(&d)] = true
				batch = append(batch, d)
				s := in[kof(&d)]
				s.packets += d.Packets
				s.octets += d.Octets
				in[kof(&d)] = s
			}
			c.Merge(batch, emit)
			if c.Len() > cfg.MaxFlows {
				t.Fatalf("seed %d: %d flows, max %d", seed, c.Len(), cfg.MaxFlows)
			}
			if rng.IntN(3) != 0 {
				c.Expire(now, emit)
				checkInvariants(t, c, now.UnixNano())
			}
		}
		c.Flush(emit)
		if len(pending) != 0 {
			t.Fatalf("seed %d: an odd record left", seed)
		}
		for k, s := range in {
			if out[k] != s {
				t.Fatalf("seed %d: direction %v: in %+v, out %+v", seed, k, s, out[k])
			}
		}
		if len(in) != len(out) {
			t.Fatalf("seed %d: %d directions in, %d out", seed, len(in), len(out))
		}
		st := c.Stats()
		if st.Flows != 0 || st.MergedPackets != st.ExportedPackets || st.MergedOctets != st.ExportedOctets {
			t.Fatalf("seed %d: stats %+v", seed, st)
		}
	}
}

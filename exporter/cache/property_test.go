// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// randomKey returns one of n flow keys, IPv4 and IPv6 mixed.
func randomKey(rng *rand.Rand, n int) flow.Record {
	i := rng.IntN(n)
	r := flow.Record{
		SrcPort: uint16(i), DstPort: 53, Proto: flow.ProtoUDP,
		Src: netip.AddrFrom4([4]byte{198, 18, 0, byte(i % 7)}),
		Dst: netip.AddrFrom4([4]byte{198, 19, 0, 1}),
	}
	switch i % 3 {
	case 1:
		r.Proto, r.DstPort = flow.ProtoTCP, 443
	case 2:
		r.Src = netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i % 7)})
		r.Dst = netip.AddrFrom16([16]byte{0: 0xfd, 15: 0xff})
		r.Proto = flow.ProtoTCP
	}
	return r
}

type keyOf struct {
	src, dst   netip.Addr
	sport      uint16
	proto      uint8
	start, end time.Time
}

func kof(r *flow.Record) keyOf {
	return keyOf{src: r.Src, dst: r.Dst, sport: r.SrcPort, proto: r.Proto}
}

// TestConservationRandom merges random deltas under random policies and
// checks that every packet and octet comes out exactly once, that the
// records of a flow do not overlap, and that each end reason is justified.
func TestConservationRandom(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 0x6b666c6f77))
		idle := time.Duration(1+rng.IntN(20)) * time.Second
		cfg := Config{
			IdleTimeout:   idle,
			ActiveTimeout: time.Duration(1+rng.IntN(60)) * time.Second,
			EndGrace:      time.Duration(1+rng.Int64N(int64(idle))) * time.Nanosecond,
			MaxFlows:      1 + rng.IntN(400),
		}
		keys := 10 + rng.IntN(2000)
		c := newCache(t, cfg)

		type total struct{ packets, octets uint64 }
		in := map[keyOf]total{}
		out := map[keyOf]total{}
		last := map[keyOf]time.Time{} // end of the flow's previous record
		now := at(0)
		emit := func(r *flow.Record) {
			if r.Packets == 0 || r.Start.After(r.End) {
				t.Fatalf("seed %d: bad record %+v", seed, r)
			}
			k := kof(r)
			if l, ok := last[k]; ok && !r.Start.After(l) {
				t.Fatalf("seed %d: record %v..%v overlaps the previous one ending %v", seed, r.Start, r.End, l)
			}
			last[k] = r.End
			switch r.EndReason {
			case flow.EndIdle:
				if r.End.Add(cfg.IdleTimeout).After(now) {
					t.Fatalf("seed %d: idle record ending %v at %v", seed, r.End, now)
				}
			case flow.EndActive:
				if r.Start.Add(cfg.ActiveTimeout).After(now) {
					t.Fatalf("seed %d: active record starting %v at %v", seed, r.Start, now)
				}
			case flow.EndOfFlow:
				if r.Proto != flow.ProtoTCP || r.TCPFlags&(flow.TCPFin|flow.TCPRst) == 0 {
					t.Fatalf("seed %d: end of flow without fin or rst: %+v", seed, r)
				}
			case flow.EndLackOfResources, flow.EndForced:
			default:
				t.Fatalf("seed %d: reason %v", seed, r.EndReason)
			}
			o := out[k]
			o.packets += r.Packets
			o.octets += r.Octets
			out[k] = o
		}

		var batch []flow.Record
		for range 300 {
			prev := now
			now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			if rng.IntN(50) == 0 {
				now = now.Add(time.Duration(rng.Int64N(int64(10 * time.Minute)))) // long pause
			}
			// One delta per key per drain, inside (prev, now], as the
			// kernel delivers them.
			batch = batch[:0]
			seen := map[keyOf]bool{}
			for range rng.IntN(80) {
				d := randomKey(rng, keys)
				if seen[kof(&d)] {
					continue
				}
				seen[kof(&d)] = true
				span := now.Sub(prev)
				if span <= 1 {
					continue
				}
				a := 1 + rng.Int64N(int64(span-1))
				b := a + rng.Int64N(int64(span)-a+1)
				d.Start, d.End = prev.Add(time.Duration(a)), prev.Add(time.Duration(b))
				d.Packets = 1 + rng.Uint64N(1000)
				d.Octets = d.Packets*40 + rng.Uint64N(d.Packets*1460)
				if d.Proto == flow.ProtoTCP && rng.IntN(20) == 0 {
					d.TCPFlags = flow.TCPFin
				}
				if d.Proto == flow.ProtoTCP && rng.IntN(40) == 0 {
					d.TCPFlags |= flow.TCPRst
				}
				d.MinTTL, d.MaxTTL = 60, 64
				batch = append(batch, d)
				k := kof(&d)
				s := in[k]
				s.packets += d.Packets
				s.octets += d.Octets
				in[k] = s
			}
			c.Merge(batch, emit)
			if c.Len() > cfg.MaxFlows {
				t.Fatalf("seed %d: %d flows, max %d", seed, c.Len(), cfg.MaxFlows)
			}
			if rng.IntN(4) != 0 {
				c.Expire(now, emit)
				checkInvariants(t, c, now.UnixNano())
			}
		}
		c.Flush(emit)
		if len(in) != len(out) {
			t.Fatalf("seed %d: %d flows in, %d out", seed, len(in), len(out))
		}
		for k, s := range in {
			if out[k] != s {
				t.Fatalf("seed %d: flow %v: in %+v, out %+v", seed, k, s, out[k])
			}
		}
		st := c.Stats()
		if st.Flows != 0 || st.MergedPackets != st.ExportedPackets || st.MergedOctets != st.ExportedOctets {
			t.Fatalf("seed %d: stats %+v", seed, st)
		}
	}
}

// checkInvariants walks the wheel: every cached flow is in it once, the
// index finds it, and no flow with counts is past its deadline after Expire.
func checkInvariants(t *testing.T, c *Cache, now int64) {
	t.Helper()
	n := 0
	for b := range c.wheel {
		h := uint32(headBase + b)
		prev := h
		for x := c.wheel[b].next; x != h; x = c.entry(x).lk.next {
			e := c.entry(x)
			if e.lk.prev != prev {
				t.Fatalf("bucket %d: entry %d prev %d, want %d", b, x, e.lk.prev, prev)
			}
			prev = x
			n++
			if idx, _, ok := c.find(&e.key, c.hash(&e.key)); !ok || idx != x {
				t.Fatalf("entry %d not in the index", x)
			}
			if e.due <= now && !c.empty(x, e) {
				t.Fatalf("entry %d due %d <= now %d after expire: bucket %d tick(due) %d cursor %d %+v", x, e.due, now, b, tickOf(e.due), c.cursor, *e)
			}
		}
		if c.wheel[b].prev != prev {
			t.Fatalf("bucket %d: tail %d, want %d", b, c.wheel[b].prev, prev)
		}
	}
	if n != c.Len() {
		t.Fatalf("%d entries in the wheel, %d in the index", n, c.Len())
	}
}

func TestIndexChurn(t *testing.T) {
	c := newCache(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[key]uint32{}
	var k key
	for round := range 6 {
		for range 20000 {
			binary.LittleEndian.PutUint64(k[:8], rng.Uint64())
			if _, ok := live[k]; ok {
				continue
			}
			h := c.hash(&k)
			_, pos, found := c.find(&k, h)
			if found {
				t.Fatalf("round %d: absent key found", round)
			}
			idx := c.alloc()
			c.entry(idx).key = k
			c.insertAt(pos, h, idx)
			live[k] = idx
		}
		for kk, idx := range live {
			if rng.IntN(3) != 0 {
				c.remove(idx, c.entry(idx))
				delete(live, kk)
			}
		}
		if c.Len() != len(live) {
			t.Fatalf("round %d: index holds %d, want %d", round, c.Len(), len(live))
		}
		for kk, idx := range live {
			if got, _, ok := c.find(&kk, c.hash(&kk)); !ok || got != idx {
				t.Fatalf("round %d: key lost after deletions", round)
			}
		}
	}
}

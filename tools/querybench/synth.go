// SPDX-License-Identifier: Apache-2.0

package main

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// synth generates a realistic mix of flow records (the same shape as the
// flowfile package's test generator): 200 local hosts talking to
// Zipf-distributed remote hosts, 60% TCP, 35% UDP (a lot of DNS), 4% ICMP,
// 1% other, 10% IPv6, both directions, heavy-tailed packet counts, times at
// millisecond precision, sorted by end time. Addresses are from the
// benchmarking range 198.18.0.0/15 and fd00::/8.
type synth struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	now  time.Time
}

func newSynth(seed uint64, start time.Time) *synth {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &synth{rng: rng, zipf: rand.NewZipf(rng, 1.2, 4, 20000), now: start}
}

func (s *synth) local(v6 bool) netip.Addr {
	h := s.rng.IntN(200)
	if v6 {
		return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x00, 7: 1, 14: byte(h >> 8), 15: byte(h)})
	}
	return netip.AddrFrom4([4]byte{198, 18, byte(h / 250), byte(h%250 + 1)})
}

func (s *synth) remote(v6 bool) netip.Addr {
	r := s.zipf.Uint64()
	if v6 {
		return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x01, 6: byte(r >> 16), 7: byte(r >> 8), 15: byte(r)})
	}
	return netip.AddrFrom4([4]byte{198, 19, byte(r >> 8), byte(r)})
}

func (s *synth) pareto(lo, alpha, hi float64) float64 {
	return math.Min(hi, lo/math.Pow(1-s.rng.Float64(), 1/alpha))
}

func (s *synth) record() flow.Record {
	rng := s.rng
	v6 := rng.IntN(10) == 0
	r := flow.Record{Src: s.local(v6), Dst: s.remote(v6), InIf: 2, OutIf: 3, EndReason: flow.EndIdle}
	var durMs int64
	switch p := rng.IntN(100); {
	case p < 60:
		r.Proto = flow.ProtoTCP
		r.SrcPort = uint16(32768 + rng.IntN(28232))
		r.DstPort = []uint16{443, 443, 443, 443, 80, 22, 993, 8080}[rng.IntN(8)]
		r.Packets = uint64(s.pareto(2, 1.1, 1e6))
		r.Octets = r.Packets * uint64(60+rng.IntN(1400))
		durMs = int64(s.pareto(20, 0.9, 120000))
		r.TCPFlags = []uint16{0x1b, 0x1b, 0x1b, 0x18, 0x10, 0x02, 0x14, 0x1f}[rng.IntN(8)]
	case p < 95:
		r.Proto = flow.ProtoUDP
		r.SrcPort = uint16(32768 + rng.IntN(28232))
		switch q := rng.IntN(100); {
		case q < 45:
			r.DstPort = 53
			if v6 {
				r.Dst = netip.MustParseAddr("fd00::53")
			} else {
				r.Dst = netip.AddrFrom4([4]byte{198, 18, 0, 53 + byte(rng.IntN(2))})
			}
			r.Packets, r.Octets = 1, uint64(60+rng.IntN(40))
		case q < 80:
			r.DstPort = 443
			r.Packets = uint64(s.pareto(3, 1.1, 1e6))
			r.Octets = r.Packets * uint64(100+rng.IntN(1250))
			durMs = int64(s.pareto(50, 0.9, 120000))
		default:
			r.DstPort = uint16(1024 + rng.IntN(64511))
			r.Packets = uint64(s.pareto(1, 1.5, 1e5))
			r.Octets = r.Packets * uint64(40+rng.IntN(1400))
			durMs = int64(s.pareto(5, 0.9, 60000))
		}
	case p < 99:
		r.Proto = flow.ProtoICMP
		if v6 {
			r.Proto = flow.ProtoICMPv6
		}
		r.ICMPType = 8
		r.Packets = uint64(1 + rng.IntN(5))
		r.Octets = r.Packets * 84
		durMs = int64(rng.IntN(5000))
	default:
		r.Proto = []uint8{47, 50, 132}[rng.IntN(3)]
		r.Packets = uint64(s.pareto(1, 1.2, 1e5))
		r.Octets = r.Packets * uint64(100+rng.IntN(1300))
		durMs = int64(s.pareto(100, 1, 120000))
	}
	if r.Packets == 0 {
		r.Packets = 1
	}
	r.MinTTL, r.MaxTTL = 64, 64
	if rng.IntN(10) == 0 {
		r.TOS = []uint8{0x20, 0xb8, 0x02}[rng.IntN(3)]
	}
	if rng.IntN(2) == 0 { // the reply direction
		r.Src, r.Dst = r.Dst, r.Src
		r.SrcPort, r.DstPort = r.DstPort, r.SrcPort
		r.InIf, r.OutIf = r.OutIf, r.InIf
		r.Direction = flow.Egress
		if r.IsICMP() {
			r.ICMPType = 0
			if v6 {
				r.ICMPType = 129
			}
		}
	}
	s.now = s.now.Add(time.Duration(rng.ExpFloat64() * float64(500*time.Microsecond)))
	r.End = s.now.Truncate(time.Millisecond)
	r.Start = r.End.Add(-time.Duration(durMs) * time.Millisecond)
	return r
}

func (s *synth) records(n int) []flow.Record {
	out := make([]flow.Record, n)
	for i := range out {
		out[i] = s.record()
	}
	slices.SortStableFunc(out, func(a, b flow.Record) int { return a.End.Compare(b.End) })
	return out
}

// SPDX-License-Identifier: Apache-2.0

// Package synthflow makes realistic synthetic flow records for tests and
// benchmarks. It is deterministic: the same seed and options give the
// same records, so benchmark figures stay comparable from run to run.
//
// Two workloads:
//
//   - Mix is what a collector sees from a site: 200 local hosts talking to
//     Zipf-distributed remote hosts, mostly TCP and UDP, heavy-tailed
//     counters, sorted by end time. The flow-file tests and benchmarks and
//     tools/querybench use it.
//   - Distinct is an export stream of many distinct flows with uniform
//     counters, hard to compress. tools/benchcmp's collector rows and the
//     collector's BenchmarkCollectorDistinct use it.
//
// Addresses are from the benchmarking ranges 198.18.0.0/15 and fd00::/8.
package synthflow

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// DefaultStart is the time of a Mix's first record when Options.Start is
// zero.
var DefaultStart = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// Options configure a Mix.
type Options struct {
	Seed  uint64
	Start time.Time // about the first record's end time (zero: DefaultStart)
	// Exporter is set on every record when valid.
	Exporter netip.Addr
	// SubMs keeps times in nanoseconds; by default they are whole
	// milliseconds, as IPFIX carries them.
	SubMs bool
	// Simple is the plainer mix tools/querybench has published its
	// figures on: TCP to 443 (50%), 80, 22, 993 or 8080, no NTP, TTL 64
	// and end reason idle throughout.
	Simple bool
}

// Mix generates a realistic mix of flow records as a collector sees them:
// a site of 200 hosts talking to Zipf-distributed remote hosts, 60% TCP
// (mostly 443/80), 35% UDP (DNS to two resolvers, QUIC, NTP), 4% ICMP, 1%
// other, 10% IPv6, both directions, heavy-tailed packet counts and
// durations, about 2000 flows/s.
type Mix struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	now  time.Time
	opts Options
}

// NewMix returns a Mix.
func NewMix(opts Options) *Mix {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	return &Mix{rng: rng, zipf: rand.NewZipf(rng, 1.2, 4, 20000), now: opts.Start, opts: opts}
}

func (m *Mix) local(v6 bool) netip.Addr {
	h := m.rng.IntN(200)
	if v6 {
		return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x00, 7: 1, 14: byte(h >> 8), 15: byte(h)})
	}
	return netip.AddrFrom4([4]byte{198, 18, byte(h / 250), byte(h%250 + 1)})
}

func (m *Mix) remote(v6 bool) netip.Addr {
	r := m.zipf.Uint64()
	if v6 {
		return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x01, 6: byte(r >> 16), 7: byte(r >> 8), 15: byte(r)})
	}
	return netip.AddrFrom4([4]byte{198, 19, byte(r >> 8), byte(r)})
}

func (m *Mix) pareto(lo, alpha, hi float64) float64 {
	return math.Min(hi, lo/math.Pow(1-m.rng.Float64(), 1/alpha))
}

// tcpPort returns a TCP destination port.
func (m *Mix) tcpPort() uint16 {
	if m.opts.Simple {
		return []uint16{443, 443, 443, 443, 80, 22, 993, 8080}[m.rng.IntN(8)]
	}
	switch q := m.rng.IntN(100); {
	case q < 60:
		return 443
	case q < 75:
		return 80
	case q < 80:
		return 22
	case q < 85:
		return 993
	case q < 90:
		return 8080
	}
	return uint16(1024 + m.rng.IntN(64511))
}

// Record returns the next record, a little after the one before.
func (m *Mix) Record() flow.Record {
	rng := m.rng
	v6 := rng.IntN(10) == 0
	r := flow.Record{Src: m.local(v6), Dst: m.remote(v6), InIf: 2, OutIf: 3, Exporter: m.opts.Exporter, EndReason: flow.EndIdle}
	var durMs int64
	switch p := rng.IntN(100); {
	case p < 60:
		r.Proto = flow.ProtoTCP
		r.SrcPort = uint16(32768 + rng.IntN(28232))
		r.DstPort = m.tcpPort()
		r.Packets = uint64(m.pareto(2, 1.1, 1e6))
		r.Octets = r.Packets * uint64(60+rng.IntN(1400))
		durMs = int64(m.pareto(20, 0.9, 120000))
		r.TCPFlags = []uint16{0x1b, 0x1b, 0x1b, 0x18, 0x10, 0x02, 0x14, 0x1f}[rng.IntN(8)]
		if !m.opts.Simple {
			r.EndReason = []flow.EndReason{flow.EndOfFlow, flow.EndOfFlow, flow.EndIdle, flow.EndActive}[rng.IntN(4)]
		}
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
			r.Packets = uint64(m.pareto(3, 1.1, 1e6))
			r.Octets = r.Packets * uint64(100+rng.IntN(1250))
			durMs = int64(m.pareto(50, 0.9, 120000))
		case q < 85 && !m.opts.Simple:
			r.DstPort = 123
			r.Packets, r.Octets = 1, 76
		default:
			r.DstPort = uint16(1024 + rng.IntN(64511))
			r.Packets = uint64(m.pareto(1, 1.5, 1e5))
			r.Octets = r.Packets * uint64(40+rng.IntN(1400))
			durMs = int64(m.pareto(5, 0.9, 60000))
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
		r.Packets = uint64(m.pareto(1, 1.2, 1e5))
		r.Octets = r.Packets * uint64(100+rng.IntN(1300))
		durMs = int64(m.pareto(100, 1, 120000))
	}
	if r.Packets == 0 {
		r.Packets = 1
	}
	r.MinTTL, r.MaxTTL = 64, 64
	if !m.opts.Simple && rng.IntN(3) == 0 {
		r.MinTTL = uint8(40 + rng.IntN(20))
		r.MaxTTL = r.MinTTL + uint8(rng.IntN(2))
	}
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
	m.now = m.now.Add(time.Duration(rng.ExpFloat64() * float64(500*time.Microsecond)))
	r.End = m.now
	r.Start = r.End.Add(-time.Duration(durMs) * time.Millisecond)
	if !m.opts.SubMs {
		r.End = r.End.Truncate(time.Millisecond)
		r.Start = r.Start.Truncate(time.Millisecond)
	}
	return r
}

// Records returns the next n records sorted by end time, as a flow cache
// exports them.
func (m *Mix) Records(n int) []flow.Record {
	out := make([]flow.Record, n)
	for i := range out {
		out[i] = m.Record()
	}
	slices.SortStableFunc(out, func(a, b flow.Record) int { return a.End.Compare(b.End) })
	return out
}

// Distinct returns n distinct flows as an export stream carries them: IPv4
// with one in ten IPv6, TCP and UDP (one in three) over a spread of hosts
// and ports, one in 100 to UDP port 53, uniform counters, start times in
// the minute before now.
func Distinct(n int, now time.Time) []flow.Record {
	rng := rand.New(rand.NewPCG(7, 7))
	recs := make([]flow.Record, n)
	for i := range recs {
		r := &recs[i]
		if i%10 == 9 {
			r.Src = netip.AddrFrom16([16]byte{0xfd, 0, 0, 0xbc, 0, 3, 14: byte(i >> 8), 15: byte(i)})
			r.Dst = netip.AddrFrom16([16]byte{0xfd, 0, 0, 0xbc, 0, 4, 14: byte(rng.IntN(256)), 15: byte(rng.IntN(256))})
		} else {
			r.Src = netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(64)), byte(rng.IntN(256))})
			r.Dst = netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(16)), byte(rng.IntN(256))})
		}
		r.Proto = flow.ProtoTCP
		if i%3 == 0 {
			r.Proto = flow.ProtoUDP
		}
		r.SrcPort = uint16(1024 + rng.IntN(60000))
		r.DstPort = []uint16{80, 443, 22, 8080, 3306}[rng.IntN(5)]
		if i%100 == 0 {
			r.Proto, r.DstPort = flow.ProtoUDP, 53
		}
		r.Packets = uint64(1 + rng.IntN(1000))
		r.Octets = r.Packets * uint64(40+rng.IntN(1400))
		r.Start = now.Add(-time.Duration(rng.IntN(60000)) * time.Millisecond)
		r.End = r.Start.Add(time.Duration(rng.IntN(30000)) * time.Millisecond)
		r.EndReason = flow.EndIdle
		r.InIf, r.OutIf = 2, 3
	}
	return recs
}

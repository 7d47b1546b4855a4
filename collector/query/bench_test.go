// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// benchRecords is a mix like querybench's: 60% TCP, 35% UDP (half DNS),
// the rest ICMP, 10% IPv6, Zipf-distributed remote hosts, millisecond
// times in end-time order.
func benchRecords(n int) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.2, 4, 20000)
	exp := netip.MustParseAddr("127.0.0.1")
	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	recs := make([]flow.Record, n)
	for i := range recs {
		v6 := rng.IntN(10) == 0
		h, z := rng.IntN(200), zipf.Uint64()
		src := netip.AddrFrom4([4]byte{198, 18, byte(h / 250), byte(h%250 + 1)})
		dst := netip.AddrFrom4([4]byte{198, 19, byte(z >> 8), byte(z)})
		if v6 {
			src = netip.AddrFrom16([16]byte{0: 0xfd, 7: 1, 14: byte(h >> 8), 15: byte(h)})
			dst = netip.AddrFrom16([16]byte{0: 0xfd, 1: 1, 6: byte(z >> 16), 7: byte(z >> 8), 15: byte(z)})
		}
		r := flow.Record{Src: src, Dst: dst, InIf: 2, OutIf: 3, EndReason: flow.EndIdle, Exporter: exp,
			SrcPort: uint16(32768 + rng.IntN(28232)), Packets: 1 + uint64(rng.ExpFloat64()*20)}
		switch p := rng.IntN(100); {
		case p < 60:
			r.Proto, r.DstPort, r.TCPFlags = flow.ProtoTCP, []uint16{443, 80, 22}[rng.IntN(3)], 0x1b
		case p < 95:
			r.Proto, r.DstPort = flow.ProtoUDP, []uint16{53, 443}[rng.IntN(2)]
		default:
			r.Proto, r.SrcPort, r.ICMPType = flow.ProtoICMP, 0, 8
		}
		r.Octets = r.Packets * uint64(60+rng.IntN(1400))
		now = now.Add(time.Duration(rng.IntN(2)) * time.Millisecond)
		r.End = now
		r.Start = now.Add(-time.Duration(rng.IntN(60000)) * time.Millisecond)
		recs[i] = r
	}
	return recs
}

// BenchmarkQuery measures the statistics of querybench's questions over a
// file, as "kflow file query -s" computes them (FileBackend), on one
// worker: records/s is per core.
func BenchmarkQuery(b *testing.B) {
	recs := benchRecords(1 << 18)
	path := filepath.Join(b.TempDir(), "kflow.202503140925")
	writeFile(b, path, recs)
	for _, bb := range []struct {
		name, filter string
		stats        []Element
	}{
		{"srcip-tcp", "proto tcp", []Element{ElemSrcIP}},
		{"srcip-dns", "proto udp and dst port 53", []Element{ElemSrcIP}},
		{"srcip-all", "", []Element{ElemSrcIP}},
		{"dstport-net", "net 198.19.0.0/16 and bytes > 10k", []Element{ElemDstPort}},
		{"three", "", []Element{ElemSrcIP, ElemDstIP, ElemProto}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := &Request{Filter: filter.MustParse(bb.filter), Top: 10}
			for _, e := range bb.stats {
				req.Stats = append(req.Stats, StatSpec{Element: e, Orders: []Order{ByBytes}})
			}
			be := &FileBackend{Paths: []string{path}, Workers: 1}
			n := 0
			for b.Loop() {
				res, err := be.Query(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				n += int(res.Scan.Read)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRollupAdd measures the rollups the collector builds as it
// stores records: benchRecords added one at a time as the file writer
// adds them, each first copied into one buffer as the collector decodes
// a message's records into one (so that it is in the cache, as there),
// the file's rollup payload built at the end.
func BenchmarkRollupAdd(b *testing.B) {
	recs := benchRecords(1 << 16)
	var rec [1]flow.Record
	b.ReportAllocs()
	for b.Loop() {
		rb := NewRollupBuilder()
		for i := range recs {
			rec[0] = recs[i]
			rb.Add(rec[:])
		}
		if len(rb.Payload()) == 0 {
			b.Fatal("empty rollup payload")
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(recs))/b.Elapsed().Seconds(), "records/s")
}

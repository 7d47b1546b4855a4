// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/cache"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// BenchmarkPipeline measures the exporter's whole user-space path for N
// flows: drain the kernel map, merge into the flow cache, expire every
// flow, encode IPFIX and send it over UDP on loopback. It reports records
// per second and where the time goes.
func BenchmarkPipeline(b *testing.B) {
	testenv.RequirePrivileged(b)
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			d, err := Load(Config{MapEntries: uint32(n)})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			_ = srv.SetReadBuffer(64 << 20)
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, err := srv.Read(buf); err != nil {
						return
					}
				}
			}()
			target, err := transport.ParseTarget("ipfix://" + srv.LocalAddr().String())
			if err != nil {
				b.Fatal(err)
			}
			conn, err := transport.Dial(context.Background(), target)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			var arena []byte
			var msgs [][]byte
			enc, err := ipfix.NewEncoder(ipfix.Config{})
			if err != nil {
				b.Fatal(err)
			}
			var tDrain, tCache, tEncode time.Duration
			deltas := make([]flow.Record, 0, n)
			out := make([]flow.Record, 0, n)
			// Loading the datapath (creating two maps of n entries) and
			// the sockets is not part of the pipeline.
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fillActive(b, d, n)
				c, err := cache.New(cache.Config{MaxFlows: n})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0 := time.Now()
				deltas = deltas[:0]
				if _, err := d.DrainFunc(func(r *flow.Record) { deltas = append(deltas, *r) }); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				out = out[:0]
				emit := func(r *flow.Record) { out = append(out, *r) }
				c.Merge(deltas, emit)
				c.Flush(emit)
				t2 := time.Now()
				// As the exporter does: encode the batch, then send the
				// messages with sendmmsg.
				arena, msgs = arena[:0], msgs[:0]
				var lens []int
				sent, err := enc.Encode(out, func(p ipfix.Packet) error {
					arena = append(arena, p.Bytes...)
					lens = append(lens, len(p.Bytes))
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if sent != n {
					b.Fatalf("encoded %d records, want %d", sent, n)
				}
				off := 0
				for _, l := range lens {
					msgs = append(msgs, arena[off:off+l])
					off += l
				}
				if m, err := conn.SendBatch(msgs); err != nil || m != len(msgs) {
					b.Fatalf("sent %d of %d messages: %v", m, len(msgs), err)
				}
				t3 := time.Now()
				tDrain += t1.Sub(t0)
				tCache += t2.Sub(t1)
				tEncode += t3.Sub(t2)
			}
			total := float64(b.N * n)
			b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(tDrain.Nanoseconds())/total, "drain-ns/rec")
			b.ReportMetric(float64(tCache.Nanoseconds())/total, "cache-ns/rec")
			b.ReportMetric(float64(tEncode.Nanoseconds())/total, "encode+send-ns/rec")
		})
	}
}

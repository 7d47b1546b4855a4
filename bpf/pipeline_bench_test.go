// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/cache"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// BenchmarkPipeline measures the exporter's whole user-space path for N
// flows: drain the kernel map, merge into the flow cache, expire every
// flow, encode IPFIX and send it over UDP on loopback. It reports records
// per second of elapsed time, per second of the pipeline thread's CPU
// time (user and system, which includes the loopback receive path the
// kernel runs in the sender's context), and per second of the whole
// process's CPU time (which adds the garbage collector's workers and the
// test's receiver reading the datagrams: an upper bound), and the thread's
// CPU time per record of each stage: the drain with the merge of each
// delta into the cache as the drain hands it over (as the exporter does),
// the expiry, and encoding and sending. On a shared machine the CPU figures
// move less than the elapsed ones: waiting for a CPU is not counted.
func BenchmarkPipeline(b *testing.B) {
	testenv.RequirePrivileged(b)
	for _, tc := range []struct{ n, v6Every int }{{100_000, 0}, {1_000_000, 0}, {100_000, 10}} {
		n := tc.n
		name := fmt.Sprintf("flows=%d", n)
		if tc.v6Every > 0 {
			name += fmt.Sprintf("/ipv6=1in%d", tc.v6Every)
		}
		// How many records the last drain exported, across the runs of
		// the case as across an exporter's drains.
		lastOut := 0
		b.Run(name, func(b *testing.B) {
			// The whole pipeline runs on this goroutine: keep it on one
			// thread so that the thread's CPU time is the pipeline's.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
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
			var cpuTotal, cpuProc time.Duration
			// Loading the datapath (creating two maps of n entries) and
			// the sockets is not part of the pipeline.
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fillActiveMixed(b, d, n, tc.v6Every)
				c, err := cache.New(cache.Config{MaxFlows: n})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				p0 := cpuTime(b, unix.RUSAGE_SELF)
				c0 := threadCPU(b)
				// As the exporter does: a slice of its own for the
				// drain's records, sized by the last drain's; merge each
				// delta as the drain hands it over, then expire.
				out := make([]flow.Record, 0, max(64, lastOut))
				emit := func(r *flow.Record) { out = append(out, *r) }
				if _, err := d.DrainFunc(func(r *flow.Record) { c.MergeOne(r, emit) }); err != nil {
					b.Fatal(err)
				}
				c1 := threadCPU(b)
				c.Flush(emit)
				c2 := threadCPU(b)
				// As the exporter does: encode the batch, then send the
				// messages with the transport's SendBatch.
				arena, msgs = arena[:0], msgs[:0]
				var lens []int
				grouped := wire.GroupFamilies(out, false)
				sent, err := enc.Encode(grouped, func(p ipfix.Packet) error {
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
				c3 := threadCPU(b)
				lastOut = len(out)
				cpuProc += cpuTime(b, unix.RUSAGE_SELF) - p0
				cpuTotal += c3 - c0
				tDrain += c1 - c0
				tCache += c2 - c1
				tEncode += c3 - c2
			}
			total := float64(b.N * n)
			b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(total/cpuTotal.Seconds(), "records/cpu-s")
			b.ReportMetric(total/cpuProc.Seconds(), "records/process-cpu-s")
			b.ReportMetric(float64(tDrain.Nanoseconds())/total, "drain+merge-cpu-ns/rec")
			b.ReportMetric(float64(tCache.Nanoseconds())/total, "expire-cpu-ns/rec")
			b.ReportMetric(float64(tEncode.Nanoseconds())/total, "encode+send-cpu-ns/rec")
		})
	}
}

// threadCPU returns the user and system CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration { return cpuTime(b, unix.RUSAGE_THREAD) }

// cpuTime returns the user and system CPU time of the thread or process.
func cpuTime(b *testing.B, who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		b.Fatalf("cpu time: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

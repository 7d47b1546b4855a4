// SPDX-License-Identifier: Apache-2.0

package server

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// BenchmarkCollector measures decode + store on one core: pre-encoded
// IPFIX messages (mixed IPv4/IPv6, 1400-octet MTU) through the handler into
// a real Rotator writing compressed flow files. It reports flows/s and the
// bytes each flow takes on disk.
func BenchmarkCollector(b *testing.B) {
	recs := testRecords(4096, true)
	for i := range recs {
		// Vary what a real network varies, so compression is not flattered.
		recs[i].Packets = uint64(1 + i*7919%1000)
		recs[i].Octets = recs[i].Packets * uint64(60+i%1400)
		recs[i].SrcPort = uint16(1024 + i*131%60000)
	}
	msgs := encodeIPFIX(b, ipfix.Config{MTU: 1400}, recs, len(recs))
	dir := b.TempDir()
	sink, err := NewFileSink(FileSinkOptions{Rotator: flowfile.RotatorOptions{Dir: dir, Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(HandlerConfig{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	var octets int
	for _, m := range msgs {
		octets += len(m)
	}
	b.SetBytes(int64(octets))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, m := range msgs {
			h.HandlePacket(exporter1, m, t0)
		}
	}
	if err := sink.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	flows := float64(b.N) * float64(len(recs))
	b.ReportMetric(flows/b.Elapsed().Seconds(), "flows/s")
	var size int64
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				size += st.Size()
			}
		}
		return nil
	})
	if tot := h.Stats().Totals(); tot.Records != uint64(flows) {
		b.Fatalf("stored %d of %.0f flows", tot.Records, flows)
	}
	b.ReportMetric(float64(size)/flows, "disk-B/flow")
}

// distinctRecords makes n distinct flows like tools/benchcmp's export
// stream (synthflow.Distinct).
func distinctRecords(n int) []flow.Record { return synthflow.Distinct(n, t0) }

// BenchmarkCollectorDistinct measures decode + store of the workload of
// tools/benchcmp's collector rows: many distinct flows (1<<18, encoded once
// by kflow's IPFIX encoder, 1400-octet messages) through the handler into a
// real Rotator writing flow files in a temporary directory, flushed every
// second as the server does. flows/s is the wall-clock rate, flows/cpu-s
// the rate per core of process CPU time (getrusage: background compression
// included), disk-B/flow the size of the finished files.
func BenchmarkCollectorDistinct(b *testing.B) {
	recs := distinctRecords(1 << 18)
	msgs := encodeIPFIX(b, ipfix.Config{MTU: 1400}, recs, len(recs))
	dir := b.TempDir()
	sink, err := NewFileSink(FileSinkOptions{Rotator: flowfile.RotatorOptions{Dir: dir, Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(HandlerConfig{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	var octets int
	for _, m := range msgs {
		octets += len(m)
	}
	b.SetBytes(int64(octets))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	last := time.Now()
	for range b.N {
		for i, m := range msgs {
			h.HandlePacket(exporter1, m, t0)
			if i%64 != 63 {
				continue
			}
			if now := time.Now(); now.Sub(last) >= DefaultFlushInterval {
				last = now
				if err := sink.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := sink.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	flows := float64(b.N) * float64(len(recs))
	b.ReportMetric(flows/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(flows/cpu.Seconds(), "flows/cpu-s")
	var size int64
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				size += st.Size()
			}
		}
		return nil
	})
	if tot := h.Stats().Totals(); tot.Records != uint64(flows) {
		b.Fatalf("stored %d of %.0f flows", tot.Records, flows)
	}
	b.ReportMetric(float64(size)/flows, "disk-B/flow")
}

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/synthflow"
)

// BenchmarkWrite measures encoding + compression of the synthetic mix, one
// core, into memory.
func BenchmarkWrite(b *testing.B) {
	for _, lv := range []struct {
		name     string
		level    Level
		distinct bool
	}{{"default", LevelDefault, false}, {"fastest", LevelFastest, false}, {"distinct", LevelDefault, true}} {
		b.Run(lv.name, func(b *testing.B) {
			recs := newSynth(1).Records(1 << 16)
			if lv.distinct {
				// What the collector's benchmarks send: every flow distinct.
				recs = synthflow.Distinct(1<<16, time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC))
			}
			var buf bytes.Buffer
			b.ResetTimer()
			var n int
			var size int64
			for b.Loop() {
				buf.Reset()
				w, err := NewWriter(&buf, WriterOptions{Level: lv.level})
				if err != nil {
					b.Fatal(err)
				}
				for i := range recs {
					if err := w.Append(&recs[i]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				n += len(recs)
				size += int64(buf.Len())
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(size)/float64(n), "bytes/flow")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRead measures decompression + decoding, one core.
func BenchmarkRead(b *testing.B) {
	recs := newSynth(1).Records(1 << 16)
	file := writeBytes(b, recs, WriterOptions{})
	b.ResetTimer()
	var n int
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file), int64(len(file)), ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
			n++
		}
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
		r.Close()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(len(file))/float64(len(recs)), "bytes/flow")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBlockEncode measures the block encoder alone (columns and the
// address dictionary, no compression) on blocks of distinct flows.
func BenchmarkBlockEncode(b *testing.B) {
	recs := synthflow.Distinct(DefaultBlockRecords, time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC))
	enc := newBlockEncoder()
	var n int
	for b.Loop() {
		enc.encode(recs)
		n += len(recs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	b.ReportMetric(0, "ns/op")
}

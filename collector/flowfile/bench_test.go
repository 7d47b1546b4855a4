// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"testing"
)

// BenchmarkWrite measures encoding + compression of the synthetic mix, one
// core, into memory.
func BenchmarkWrite(b *testing.B) {
	for _, lv := range []struct {
		name  string
		level Level
	}{{"default", LevelDefault}, {"fastest", LevelFastest}} {
		b.Run(lv.name, func(b *testing.B) {
			recs := newSynth(1).Records(1 << 16)
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

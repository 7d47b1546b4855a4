// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
)

func BenchmarkEncode(b *testing.B) {
	clk := &fakeClock{t: t0}
	e := newEncoder(b, Config{}, clk)
	recs := numbered(1000, true)
	emit := func(Packet) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Encode(recs, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkDecode(b *testing.B) {
	clk := &fakeClock{t: t0}
	e := newEncoder(b, Config{}, clk)
	var s sink
	if _, err := e.Encode(numbered(1000, true), s.emit); err != nil {
		b.Fatal(err)
	}
	msgs := s.bytes()
	sess := NewSession(wire.Limits{})
	var m Message
	if err := sess.Decode(&m, msgs[0]); err != nil { // learn the templates
		b.Fatal(err)
	}
	msgs = msgs[1:]
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, msg := range msgs {
			if err := sess.Decode(&m, msg); err != nil {
				b.Fatal(err)
			}
			n += len(m.Records)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"math"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// TestSamplingAnnounced: the sampling options record says how packets
// were sampled, in the deprecated IEs 34/35 collectors read and in PSAMP
// form, and decodes back to the interval and the algorithm.
func TestSamplingAnnounced(t *testing.T) {
	for _, c := range []struct {
		random bool
		algo   uint8
		out    string // what tshark shows of the PSAMP fields
	}{
		{true, wire.SamplingRandom, "Selector Algorithm: Uniform probabilistic Sampling (4)"},
		{false, wire.SamplingDeterministic, "Selector Algorithm: Systematic count-based Sampling (1)"},
	} {
		e := newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 10, SamplingRandom: c.random}, &wiretest.Clock{T: t0})
		var s wiretest.Sink
		wiretest.Encode(t, e, &s, recordV4())
		got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
		// The sampling record (IEs 34, 35, 305, 306) and the PSAMP
		// selector report (scope selectorId 1) both say it.
		want := wire.Sampling{Domain: 7, Interval: 10, Algorithm: c.algo}
		selector := want
		selector.SamplerID, selector.HasSamplerID = 1, true
		if len(got.Sampling) != 2 || got.Sampling[0] != want || got.Sampling[1] != selector {
			t.Errorf("random %v: sampling %+v, want %+v then %+v", c.random, got.Sampling, want, selector)
		}
		if len(got.Records) != 1 || got.Records[0].SamplingInterval != 10 {
			t.Errorf("random %v: records %+v", c.random, got.Records)
		}
		out := wiretest.Tshark(t, 4739, s.Bytes())
		algo := "Sampling algorithm: Deterministic"
		if c.random {
			algo = "Sampling algorithm: Random"
		}
		wiretest.Contains(t, out, "Sampling interval: 10", algo, c.out, "Sampling Packet Space: 9")
		if c.random {
			wiretest.Contains(t, out, "Sampling Probability: 0.1")
		}
	}
}

// TestSamplingProbabilityOnly decodes a PSAMP sampling record that gives
// only selectorAlgorithm 4 and samplingProbability (float64, and float32
// in reduced-size encoding).
func TestSamplingProbabilityOnly(t *testing.T) {
	for _, size := range []int{8, 4} {
		s := NewSession(wire.Limits{})
		var m Message
		var prob []byte
		if size == 8 {
			prob = be(math.Float64bits(0.01), 8)
		} else {
			prob = be(uint64(math.Float32bits(0.01)), 4)
		}
		msg := message(
			set(SetOptionsTemplate, cat(u16s(300, 3, 1), u16s(149, 4, 304, 2, 311, uint16(size)))),
			set(300, cat(be(9, 4), be(4, 2), prob)))
		if err := s.Decode(&m, msg); err != nil {
			t.Fatal(err)
		}
		if len(m.Sampling) != 1 || m.Sampling[0] != (wire.Sampling{Domain: 9, Interval: 100, Algorithm: wire.SamplingRandom}) {
			t.Errorf("float%d: sampling %+v", size*8, m.Sampling)
		}
	}
}

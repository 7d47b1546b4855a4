// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// TestSamplersOfOneSource: Cisco's sampler options (FLOW_SAMPLER_ID,
// FLOW_SAMPLER_MODE, FLOW_SAMPLER_RANDOM_INTERVAL) for two samplers of
// one source id; data records carrying FLOW_SAMPLER_ID are scaled by
// their sampler's interval.
func TestSamplersOfOneSource(t *testing.T) {
	s := newSession(wire.Limits{})
	opt := cat(u16s(300, 4, 12), u16s(1, 4), u16s(48, 1, 49, 1, 50, 4))
	tpl := cat(u16s(301, 6), u16s(8, 4, 12, 4, 4, 1, 1, 4, 2, 4, 48, 1))
	rec := func(last, sampler byte) []byte {
		return cat([]byte{198, 18, 0, last}, []byte{198, 18, 1, last}, []byte{flow.ProtoUDP}, []byte{0, 0, 3, 232}, []byte{0, 0, 0, 10}, []byte{sampler})
	}
	d, err := s.Decode(packet(
		flowset(1, opt),
		flowset(0, tpl),
		flowset(300, cat([]byte{0, 0, 0, 0}, []byte{1, 2}, []byte{0, 0, 0, 10}), cat([]byte{0, 0, 0, 0}, []byte{2, 2}, []byte{0, 0, 0, 100})),
		flowset(301, rec(1, 1), rec(2, 2)),
	))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Records) != 2 || d.Records[0].SamplingInterval != 10 || d.Records[1].SamplingInterval != 100 {
		t.Fatalf("records %+v", d.Records)
	}
	if len(d.Sampling) != 2 || !d.Sampling[1].HasSamplerID || d.Sampling[1].SamplerID != 2 || d.Sampling[1].Interval != 100 {
		t.Errorf("sampling %+v", d.Sampling)
	}
}

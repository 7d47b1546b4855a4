// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// TestSamplersOfOneDomain: two selectors (IE 302) and a sampler (IE 48)
// of one observation domain each announce a rate; data records naming
// one are scaled by its rate, a record naming none that was announced by
// the domain's last.
func TestSamplersOfOneDomain(t *testing.T) {
	s := NewSession(wire.Limits{})
	var m Message
	optSel := cat(u16s(404, 2, 1), u16s(302, 8, 34, 4))
	optSmp := cat(u16s(405, 2, 1), u16s(48, 1, 34, 4))
	tplSel := cat(u16s(406, 6), u16s(8, 4, 12, 4, 4, 1, 1, 4, 2, 4, 302, 8))
	tplSmp := cat(u16s(407, 6), u16s(8, 4, 12, 4, 4, 1, 1, 4, 2, 4, 48, 1))
	rec := func(last byte, id []byte) []byte {
		return cat([]byte{198, 18, 0, last}, []byte{198, 18, 1, last}, []byte{flow.ProtoUDP}, be(1000, 4), be(10, 4), id)
	}
	msg := message(
		set(SetTemplate, tplSel, tplSmp),
		set(SetOptionsTemplate, optSel, optSmp),
		set(404, cat(be(1, 8), be(10, 4)), cat(be(2, 8), be(100, 4))),
		set(405, cat(be(3, 1), be(7, 4))),
		set(406, rec(1, be(1, 8)), rec(2, be(2, 8)), rec(4, be(99, 8))),
		set(407, rec(3, be(3, 1))),
	)
	if err := s.Decode(&m, msg); err != nil {
		t.Fatal(err)
	}
	want := map[byte]uint32{1: 10, 2: 100, 4: 7, 3: 7} // 99 was never announced: the domain's last (7)
	if len(m.Records) != len(want) {
		t.Fatalf("%d records: %+v", len(m.Records), m.Records)
	}
	for _, r := range m.Records {
		last := r.Src.As4()[3]
		if r.SamplingInterval != want[last] {
			t.Errorf("record of 198.18.0.%d: sampling %d, want %d", last, r.SamplingInterval, want[last])
		}
	}
	wantS := []wire.Sampling{{Domain: 9, Interval: 10, SamplerID: 1, HasSamplerID: true},
		{Domain: 9, Interval: 100, SamplerID: 2, HasSamplerID: true}, {Domain: 9, Interval: 7, SamplerID: 3, HasSamplerID: true}}
	if len(m.Sampling) != 3 || m.Sampling[0] != wantS[0] || m.Sampling[1] != wantS[1] || m.Sampling[2] != wantS[2] {
		t.Errorf("sampling %+v, want %+v", m.Sampling, wantS)
	}
}

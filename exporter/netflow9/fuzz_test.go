// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// FuzzDecode feeds arbitrary packets to a session, twice so that a
// packet's own templates apply to its data. Seeds are the encoder's own
// packets and hand-made edge cases.
func FuzzDecode(f *testing.F) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(f, Config{SourceID: 7, SamplingInterval: 10, MTU: 600}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 1, Name: "lo"}})
	var s wiretest.Sink
	wiretest.Encode(f, e, &s, numbered(20, true)...)
	for _, b := range s.Bytes() {
		f.Add(b)
	}
	cg := newEncoder(f, Config{SourceID: 7, Cgroups: true}, clk)
	s = wiretest.Sink{}
	recs := numbered(4, true)
	for i := range recs {
		recs[i].CgroupID, recs[i].Cgroup = uint64(i+1), "/system.slice/a.service"
	}
	wiretest.Encode(f, cg, &s, recs...)
	for _, b := range s.Bytes() {
		f.Add(b)
	}
	f.Add(packet(flowset(SetOptionsTemplate, u16s(300, 4, 4, 2, 4, 82, 4)), flowset(300, []byte{0, 0, 0, 1, 'l', 'o', 0, 0})))
	f.Add(packet(flowset(SetTemplate, u16s(300, 0))))
	f.Fuzz(func(t *testing.T, b []byte) {
		wiretest.FuzzDecode(t, newSession(wire.Limits{MaxTemplates: 16, MaxFields: 64}), b, 16)
	})
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"bytes"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// FuzzDecode feeds arbitrary messages to a session, twice so that a
// message's own templates apply to its data, and held sets back in.
// Seeds are the encoder's own messages and the malformed-input cases.
func FuzzDecode(f *testing.F) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(f, Config{ObservationDomain: 7, SamplingInterval: 10, MTU: 600}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 1, Name: "lo"}, {Index: 2, Name: "veth0"}})
	var s wiretest.Sink
	wiretest.Encode(f, e, &s, numbered(20, true)...)
	for _, b := range s.Bytes() {
		f.Add(b)
	}
	bi := newEncoder(f, Config{ObservationDomain: 7, Biflow: true}, clk)
	s = wiretest.Sink{}
	wiretest.Encode(f, bi, &s, biflowPairs()...)
	for _, b := range s.Bytes() {
		f.Add(b)
	}
	cg := newEncoder(f, Config{ObservationDomain: 7, Cgroups: true}, clk)
	s = wiretest.Sink{}
	wiretest.Encode(f, cg, &s, cgroupRecords()...)
	for _, b := range s.Bytes() {
		f.Add(b)
	}
	f.Add(message(set(SetTemplate, tmplRec(300, 82, 0xffff, 8, 4)), set(300, []byte{255, 0, 1, 'x', 1, 2, 3, 4})))
	f.Add(message(set(SetOptionsTemplate, u16s(301, 2, 1, 10, 4, 82, 0xffff)), set(301, []byte{0, 0, 0, 1, 2, 'l', 'o'})))
	f.Add(message(set(SetTemplate, u16s(SetTemplate, 0))))
	f.Fuzz(func(t *testing.T, b []byte) {
		wiretest.FuzzDecode(t, newSession(wire.Limits{MaxTemplates: 16, MaxFields: 64}), b, 16)
		_, _ = ReadMessage(bytes.NewReader(b), nil)
	})
}

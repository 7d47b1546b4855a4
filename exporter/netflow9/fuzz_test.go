// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// FuzzDecode feeds arbitrary packets to a session, twice so that a
// packet's own templates apply to its data. Seeds are the encoder's own
// packets and hand-made edge cases.
func FuzzDecode(f *testing.F) {
	clk := &fakeClock{t: t0}
	e := newEncoder(f, Config{SourceID: 7, SamplingInterval: 10, MTU: 600}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 1, Name: "lo"}})
	var s sink
	if _, err := e.Encode(numbered(20, true), s.emit); err != nil {
		f.Fatal(err)
	}
	for _, b := range s.bytes() {
		f.Add(b)
	}
	f.Add(packet(flowset(SetOptionsTemplate, u16s(300, 4, 4, 2, 4, 82, 4)), flowset(300, []byte{0, 0, 0, 1, 'l', 'o', 0, 0})))
	f.Add(packet(flowset(SetTemplate, u16s(300, 0))))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewSession(wire.Limits{MaxTemplates: 16, MaxFields: 64})
		var m Message
		for range 2 {
			if err := s.Decode(&m, b); err == nil && len(m.Records) > len(b) {
				t.Fatalf("%d records from %d octets", len(m.Records), len(b))
			}
			for _, ms := range m.Missing {
				_ = s.DecodeHeld(&m, ms)
			}
			if s.Templates().Len() > 16 {
				t.Fatalf("%d templates held", s.Templates().Len())
			}
		}
	})
}

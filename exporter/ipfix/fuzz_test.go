// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"bytes"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// FuzzDecode feeds arbitrary messages to a session, twice so that a
// message's own templates apply to its data, and held sets back in.
// Seeds are the encoder's own messages and the malformed-input cases.
func FuzzDecode(f *testing.F) {
	clk := &fakeClock{t: t0}
	e := newEncoder(f, Config{ObservationDomain: 7, SamplingInterval: 10, MTU: 600}, clk)
	e.SetInterfaces([]wire.Interface{{Index: 1, Name: "lo"}, {Index: 2, Name: "veth0"}})
	var s sink
	if _, err := e.Encode(numbered(20, true), s.emit); err != nil {
		f.Fatal(err)
	}
	for _, b := range s.bytes() {
		f.Add(b)
	}
	f.Add(message(set(SetTemplate, tmplRec(300, 82, 0xffff, 8, 4)), set(300, []byte{255, 0, 1, 'x', 1, 2, 3, 4})))
	f.Add(message(set(SetOptionsTemplate, u16s(301, 2, 1, 10, 4, 82, 0xffff)), set(301, []byte{0, 0, 0, 1, 2, 'l', 'o'})))
	f.Add(message(set(SetTemplate, u16s(SetTemplate, 0))))
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
		_, _ = ReadMessage(bytes.NewReader(b), nil)
	})
}

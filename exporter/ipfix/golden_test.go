// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// annotate describes every octet of an IPFIX message; tpls must already know
// the message's templates.
func annotate(tpls *wire.Templates, m []byte) []wiretest.Span {
	sp := []wiretest.Span{
		{Off: 0, Len: 2, Note: "version 10"},
		{Off: 2, Len: 2, Note: fmt.Sprintf("message length %d", binary.BigEndian.Uint16(m[2:]))},
		{Off: 4, Len: 4, Note: "export time (unix seconds)"},
		{Off: 8, Len: 4, Note: fmt.Sprintf("sequence number %d (data records sent before)", binary.BigEndian.Uint32(m[8:]))},
		{Off: 12, Len: 4, Note: fmt.Sprintf("observation domain id %d", binary.BigEndian.Uint32(m[12:]))},
	}
	domain := binary.BigEndian.Uint32(m[12:])
	for off := HeaderLen; off+4 <= len(m); {
		id := binary.BigEndian.Uint16(m[off:])
		n := int(binary.BigEndian.Uint16(m[off+2:]))
		sp = append(sp, wiretest.Span{Off: off, Len: 4, Note: fmt.Sprintf("set id %d, length %d", id, n)})
		body, base := m[off+4:off+n], off+4
		switch id {
		case SetTemplate, SetOptionsTemplate:
			for p := 0; p < len(body); {
				count := int(binary.BigEndian.Uint16(body[p+2:]))
				hl, note := 4, fmt.Sprintf("template id %d, field count %d", binary.BigEndian.Uint16(body[p:]), count)
				if id == SetOptionsTemplate {
					hl = 6
					note = fmt.Sprintf("options template id %d, field count %d, scope field count %d",
						binary.BigEndian.Uint16(body[p:]), count, binary.BigEndian.Uint16(body[p+4:]))
				}
				sp = append(sp, wiretest.Span{Off: base + p, Len: hl, Note: note})
				p += hl
				for range count {
					ie, l := binary.BigEndian.Uint16(body[p:]), binary.BigEndian.Uint16(body[p+2:])
					sp = append(sp, wiretest.Span{Off: base + p, Len: 4, Note: fmt.Sprintf("  ie %d %s, length %d", ie, wiretest.IENames[ie], l)})
					p += 4
				}
			}
		default:
			t := tpls.Get(domain, id)
			for p, r := 0, 0; t != nil && p < len(body); r++ {
				for i, f := range t.Fields {
					l, hl := int(f.Length), 0
					if f.Length == wire.VarLen {
						l, hl = int(body[p]), 1
					}
					note := fmt.Sprintf("record %d: %s", r, wiretest.IENames[f.ID])
					if i < t.ScopeCount {
						note += " (scope)"
					}
					if hl > 0 {
						sp = append(sp, wiretest.Span{Off: base + p, Len: 1, Note: "  variable length"})
					}
					sp = append(sp, wiretest.Span{Off: base + p + hl, Len: l, Note: note})
					p += hl + l
				}
			}
		}
		off += n
	}
	return sp
}

func TestGolden(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	msgs := wiretest.GoldenMessages(t, newEncoder(t, Config{ObservationDomain: 7, SamplingInterval: 100}, clk), clk)
	spans := wiretest.Annotate(t, newSession(wire.Limits{}), msgs, annotate)
	wiretest.Golden(t, "testdata/ipfix.golden", *update,
		"IPFIX messages of TestGolden: templates, options (stats, interface names, sampling), an IPv4 and an IPv6 record; then data only",
		msgs, spans)
}

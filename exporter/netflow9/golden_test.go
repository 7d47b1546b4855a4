// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// ieName names the field types of kflow's templates in golden file
// annotations: the IPFIX names, but for the two that v9 defines
// differently from IPFIX.
func ieName(id uint16) string {
	switch id {
	case wire.IEFlowEndSysUpTime:
		return "LAST_SWITCHED"
	case wire.IEFlowStartSysUpTime:
		return "FIRST_SWITCHED"
	}
	return wiretest.IENames[id]
}

// annotate describes every octet of a v9 packet; tpls must already know the
// packet's templates.
func annotate(tpls *wire.Templates, m []byte) []wiretest.Span {
	sp := []wiretest.Span{
		{Off: 0, Len: 2, Note: "version 9"},
		{Off: 2, Len: 2, Note: fmt.Sprintf("count %d (template and data records)", binary.BigEndian.Uint16(m[2:]))},
		{Off: 4, Len: 4, Note: fmt.Sprintf("sysUptime %d ms", binary.BigEndian.Uint32(m[4:]))},
		{Off: 8, Len: 4, Note: "unix_secs"},
		{Off: 12, Len: 4, Note: fmt.Sprintf("sequence number %d (packets sent before)", binary.BigEndian.Uint32(m[12:]))},
		{Off: 16, Len: 4, Note: fmt.Sprintf("source id %d", binary.BigEndian.Uint32(m[16:]))},
	}
	domain := binary.BigEndian.Uint32(m[16:])
	for off := HeaderLen; off+4 <= len(m); {
		id := binary.BigEndian.Uint16(m[off:])
		n := int(binary.BigEndian.Uint16(m[off+2:]))
		sp = append(sp, wiretest.Span{Off: off, Len: 4, Note: fmt.Sprintf("flowset id %d, length %d", id, n)})
		body, base := m[off+4:off+n], off+4
		p := 0
		switch id {
		case SetTemplate:
			for p+4 <= len(body) {
				count := int(binary.BigEndian.Uint16(body[p+2:]))
				sp = append(sp, wiretest.Span{Off: base + p, Len: 4, Note: fmt.Sprintf("template id %d, field count %d", binary.BigEndian.Uint16(body[p:]), count)})
				p += 4
				for range count {
					ie, l := binary.BigEndian.Uint16(body[p:]), binary.BigEndian.Uint16(body[p+2:])
					sp = append(sp, wiretest.Span{Off: base + p, Len: 4, Note: fmt.Sprintf("  type %d %s, length %d", ie, ieName(ie), l)})
					p += 4
				}
			}
		case SetOptionsTemplate:
			scope, opt := int(binary.BigEndian.Uint16(body[2:])), int(binary.BigEndian.Uint16(body[4:]))
			sp = append(sp, wiretest.Span{Off: base, Len: 6, Note: fmt.Sprintf("options template id %d, scope length %d, option length %d", binary.BigEndian.Uint16(body), scope, opt)})
			p = 6
			for i := 0; i < (scope+opt)/4; i++ {
				ie, l := binary.BigEndian.Uint16(body[p:]), binary.BigEndian.Uint16(body[p+2:])
				note := fmt.Sprintf("  type %d %s, length %d", ie, ieName(ie), l)
				if i < scope/4 {
					note = fmt.Sprintf("  scope %d (1 system, 2 interface), length %d", ie, l)
				}
				sp = append(sp, wiretest.Span{Off: base + p, Len: 4, Note: note})
				p += 4
			}
		default:
			t := tpls.Get(domain, id)
			for r := 0; t != nil && len(body)-p >= t.MinLen; r++ {
				for i, f := range t.Fields {
					note := fmt.Sprintf("record %d: %s", r, ieName(f.ID))
					if i < t.ScopeCount {
						note = fmt.Sprintf("record %d: scope value", r)
					}
					sp = append(sp, wiretest.Span{Off: base + p, Len: int(f.Length), Note: note})
					p += int(f.Length)
				}
			}
		}
		if p < len(body) {
			sp = append(sp, wiretest.Span{Off: base + p, Len: len(body) - p, Note: "padding to 4 octets"})
		}
		off += n
	}
	return sp
}

func TestGolden(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	msgs := wiretest.GoldenMessages(t, newEncoder(t, Config{SourceID: 7, SamplingInterval: 100}, clk), clk)
	spans := wiretest.Annotate(t, newSession(wire.Limits{}), msgs, annotate)
	wiretest.Golden(t, "testdata/netflow9.golden", *update,
		"NetFlow v9 packets of TestGolden: templates, options (stats, interface names, sampling), an IPv4 and an IPv6 record; then data only",
		msgs, spans)
}

// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// manyTemplates returns messages announcing n one-field templates, as
// many per message as fit.
func manyTemplates(n int) [][]byte {
	var msgs [][]byte
	for id := 256; id < 256+n; {
		var recs [][]byte
		for len(recs) < 8000 && id < 256+n && id <= 0xffff {
			recs = append(recs, tmpl(id, 8, 4))
			id++
		}
		msgs = append(msgs, ipfixMsg(0, 0, set(2, cat(recs...))))
	}
	return msgs
}

// TestHostilePackets feeds a corpus of malformed and abusive messages
// through the handler: none may hang, panic or grow state without bound,
// and each must be counted as what it is.
func TestHostilePackets(t *testing.T) {
	varlenTmpl := tmpl(400, 8, 4, 82, 0xffff)
	for _, tt := range []struct {
		name    string
		packets [][]byte
		records int               // records stored
		errors  map[string]uint64 // decode errors by kind
		check   func(t *testing.T, e ExporterStats)
	}{
		{
			name: "withdrawn template then data",
			packets: [][]byte{
				ipfixMsg(0, 0, set(2, basicTemplate(256)), set(256, basicRecord(1))),
				ipfixMsg(0, 1, set(2, cat(be16(256), be16(0)))),
				ipfixMsg(0, 1, set(256, basicRecord(2))),
			},
			records: 1,
			check: func(t *testing.T, e ExporterStats) {
				if e.Withdrawals != 1 || e.TemplateMisses != 1 || e.HeldDropped != 1 {
					t.Errorf("withdrawals %d misses %d dropped %d", e.Withdrawals, e.TemplateMisses, e.HeldDropped)
				}
			},
		},
		{
			name: "all data templates withdrawn then data",
			packets: [][]byte{
				ipfixMsg(0, 0, set(2, basicTemplate(256), basicTemplate(257))),
				ipfixMsg(0, 0, set(2, cat(be16(2), be16(0)))),
				ipfixMsg(0, 0, set(256, basicRecord(1)), set(257, basicRecord(2))),
			},
			check: func(t *testing.T, e ExporterStats) {
				if e.Withdrawals != 2 || e.TemplateMisses != 2 {
					t.Errorf("withdrawals %d misses %d", e.Withdrawals, e.TemplateMisses)
				}
			},
		},
		{
			name:    "zero-length field in template",
			packets: [][]byte{ipfixMsg(0, 0, set(2, tmpl(256, 8, 4, 12, 0)), set(256, basicRecord(1)))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "netflow9 zero-length field",
			packets: [][]byte{v9Msg(0, 0, set(0, tmpl(256, 8, 0)))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "set length past the end",
			packets: [][]byte{ipfixMsg(0, 0, cat(be16(2), be16(1000), basicTemplate(256)))},
			errors:  map[string]uint64{KindTruncated: 1},
		},
		{
			name:    "set length zero",
			packets: [][]byte{ipfixMsg(0, 0, cat(be16(256), be16(0), basicRecord(1)))},
			errors:  map[string]uint64{KindLength: 1},
		},
		{
			name:    "netflow9 flowset length zero",
			packets: [][]byte{v9Msg(0, 0, cat(be16(0), be16(0), basicTemplate(256)))},
			errors:  map[string]uint64{KindLength: 1},
		},
		{
			name: "message length past the datagram",
			packets: [][]byte{func() []byte {
				m := ipfixMsg(0, 0, set(2, basicTemplate(256)))
				binary.BigEndian.PutUint16(m[2:], 9000)
				return m
			}()},
			errors: map[string]uint64{KindTruncated: 1},
		},
		{
			name: "message length shorter than the datagram",
			packets: [][]byte{func() []byte {
				m := ipfixMsg(0, 0, set(2, basicTemplate(256)))
				binary.BigEndian.PutUint16(m[2:], 16)
				return m
			}()},
			errors: map[string]uint64{KindLength: 1},
		},
		{
			name:    "field count past the set",
			packets: [][]byte{ipfixMsg(0, 0, set(2, cat(be16(256), be16(60000), be16(8), be16(4))))},
			errors:  map[string]uint64{KindTemplateLimit: 1},
		},
		{
			name:    "field specifiers cut short",
			packets: [][]byte{ipfixMsg(0, 0, set(2, cat(be16(256), be16(3), be16(8), be16(4))))},
			errors:  map[string]uint64{KindTruncated: 1},
		},
		{
			name:    "tens of thousands of templates",
			packets: manyTemplates(30000),
			errors:  map[string]uint64{KindTemplateLimit: 4},
			check: func(t *testing.T, e ExporterStats) {
				if e.Templates != 1024 {
					t.Errorf("%d templates learned, want the limit 1024", e.Templates)
				}
			},
		},
		{
			name: "0xFF variable length past the end",
			packets: [][]byte{ipfixMsg(0, 0, set(2, varlenTmpl),
				set(400, []byte{198, 18, 0, 1}, []byte{0xff, 0xea, 0x60}, []byte("eth0")))},
			errors: map[string]uint64{KindTruncated: 1},
		},
		{
			name:    "0xFF variable length without its two octets",
			packets: [][]byte{ipfixMsg(0, 0, set(2, varlenTmpl), set(400, []byte{198, 18, 0, 1}, []byte{0xff, 0x00}))},
			errors:  map[string]uint64{KindTruncated: 1},
		},
		{
			name: "variable-length fields of zero and 0xFF-coded length",
			packets: [][]byte{ipfixMsg(0, 0, set(2, tmpl(401, 8, 4, 82, 0xffff, 12, 4)),
				set(401, []byte{198, 18, 0, 1, 0, 198, 19, 0, 1}, []byte{198, 18, 0, 2, 0xff, 0, 3}, []byte("abc"), []byte{198, 19, 0, 2}))},
			records: 2,
		},
		{
			name:    "options template with zero scope",
			packets: [][]byte{ipfixMsg(0, 0, set(3, cat(be16(300), be16(1), be16(0), be16(149), be16(4))))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "options template with scope above field count",
			packets: [][]byte{ipfixMsg(0, 0, set(3, cat(be16(300), be16(1), be16(2), be16(149), be16(4))))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "netflow9 options template with zero scope",
			packets: [][]byte{v9Msg(0, 0, set(1, cat(be16(300), be16(0), be16(4), be16(34), be16(4))))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "withdrawal of a reserved template id",
			packets: [][]byte{ipfixMsg(0, 0, set(2, cat(be16(5), be16(0))))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
		{
			name:    "reserved set ids are skipped",
			packets: [][]byte{ipfixMsg(0, 0, set(2, basicTemplate(256)), set(7, []byte{1, 2, 3}), set(256, basicRecord(1)))},
			records: 1,
		},
		{
			name: "enterprise fields are skipped",
			packets: [][]byte{ipfixMsg(0, 0, set(2, cat(be16(256), be16(3), be16(8), be16(4), be16(0x8001), be16(0xffff),
				[]byte{0, 0, 0x73, 0x79}, be16(12), be16(4))),
				set(256, []byte{198, 18, 0, 1, 2, 0xaa, 0xbb, 198, 19, 0, 1}))},
			records: 1,
		},
		{
			name:    "record shorter than the template is padding",
			packets: [][]byte{ipfixMsg(0, 0, set(2, basicTemplate(256)), set(256, basicRecord(1), []byte{0, 0, 0}))},
			records: 1,
		},
		{
			name:    "empty, short and unknown-version datagrams",
			packets: [][]byte{{}, {0}, {0, 10}, {0, 9, 0}, {0, 5, 0, 1}, {0, 7, 0, 0}, make([]byte, 100)},
			errors:  map[string]uint64{KindTruncated: 5, KindVersion: 2},
		},
		{
			name: "netflow5 count past the datagram",
			packets: [][]byte{func() []byte {
				b := make([]byte, 24+48)
				b[1], b[3] = 5, 30
				return b
			}()},
			errors: map[string]uint64{KindTruncated: 1},
		},
		{
			name: "thousands of data sets without templates",
			packets: func() [][]byte {
				var out [][]byte
				for i := range 40 {
					var sets [][]byte
					for j := range 100 {
						sets = append(sets, set(1000+i*100+j, basicRecord(j)))
					}
					out = append(out, ipfixMsg(0, 0, sets...))
				}
				return out
			}(),
			check: func(t *testing.T, e ExporterStats) {
				if e.TemplateMisses != 4000 || e.HeldDropped != 4000 {
					t.Errorf("misses %d dropped %d", e.TemplateMisses, e.HeldDropped)
				}
			},
		},
		{
			name:    "template id below 256",
			packets: [][]byte{ipfixMsg(0, 0, set(2, basicTemplate(17)))},
			errors:  map[string]uint64{KindTemplate: 1},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, sink := newTestHandler(t, HandlerConfig{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for _, p := range tt.packets {
					h.HandlePacket(exporter1, p, t0)
				}
				h.ExpireHeld(t0.Add(time.Hour))
			}()
			select {
			case <-done:
			case <-time.After(testenv.Patience):
				t.Fatalf("handler did not return within %v", testenv.Patience)
			}
			if n := len(sink.records()); n != tt.records {
				t.Errorf("%d records stored, want %d", n, tt.records)
			}
			e := h.Stats().Exporters[0]
			for k, v := range tt.errors {
				if e.DecodeErrors[k] != v {
					t.Errorf("%s errors: %d, want %d (all: %v, last: %s)", k, e.DecodeErrors[k], v, e.DecodeErrors, e.LastError)
				}
			}
			var total, want uint64
			for _, v := range e.DecodeErrors {
				total += v
			}
			for _, v := range tt.errors {
				want += v
			}
			if total != want {
				t.Errorf("decode errors %v, want %v (last: %s)", e.DecodeErrors, tt.errors, e.LastError)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// message builds an IPFIX message for domain 9 holding sets.
func message(sets ...[]byte) []byte {
	b := []byte{0, 10, 0, 0, 0x69, 0x57, 0x35, 0xa5, 0, 0, 0, 0, 0, 0, 0, 9}
	for _, s := range sets {
		b = append(b, s...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// Message builders: set(id, body...) a set, u16s(v...) big-endian
// 16-bit values, tmplRec(id, type, length, ...) a template record.
var set, u16s, tmplRec = wiretest.Set, wiretest.U16s, wiretest.TemplateRecord

func TestMalformed(t *testing.T) {
	good := tmplRec(300, 8, 4, 12, 4)
	tests := []struct {
		name    string
		msg     []byte
		want    error
		tid     uint16
		offset  int
		records int
	}{
		{name: "truncated header", msg: message()[:10], want: wire.ErrTruncated},
		{name: "version 9", msg: append([]byte{0, 9}, message()[2:]...), want: wire.ErrVersion},
		{name: "length past end", msg: func() []byte { b := message(); b[3] = 40; return b }(), want: wire.ErrTruncated, offset: 2},
		{name: "length short of datagram", msg: append(message(), 0, 0, 0, 0), want: wire.ErrLength, offset: 2},
		{name: "truncated set header", msg: func() []byte { b := message([]byte{1, 0}); return b }(), want: wire.ErrTruncated, offset: 16},
		{name: "set length past end", msg: message(u16s(256, 200)), want: wire.ErrTruncated, tid: 256, offset: 16},
		{name: "zero-length set", msg: message(u16s(256, 0)), want: wire.ErrLength, tid: 256, offset: 16},
		{name: "set length 3", msg: message(u16s(256, 3)), want: wire.ErrLength, tid: 256, offset: 16},
		{name: "field count 0xffff", msg: message(set(SetTemplate, u16s(300, 0xffff, 8, 4))), want: wire.ErrTemplateLimit, tid: 300, offset: 20},
		{name: "field count past set", msg: message(set(SetTemplate, u16s(300, 3, 8, 4))), want: wire.ErrTruncated, tid: 300, offset: 28},
		{name: "field length 0", msg: message(set(SetTemplate, tmplRec(300, 8, 4, 12, 0))), want: wire.ErrTemplate, tid: 300, offset: 20},
		{name: "template id 255", msg: message(set(SetTemplate, tmplRec(255, 8, 4))), want: wire.ErrTemplate, tid: 255, offset: 20},
		{name: "options template zero scope", msg: message(set(SetOptionsTemplate, u16s(300, 1, 0, 10, 4))), want: wire.ErrTemplate, tid: 300, offset: 20},
		{name: "options scope above count", msg: message(set(SetOptionsTemplate, u16s(300, 1, 2, 10, 4))), want: wire.ErrTemplate, tid: 300, offset: 20},
		{name: "options template header cut", msg: message(set(SetOptionsTemplate, u16s(300, 1))), want: wire.ErrTruncated, tid: 300, offset: 20},
		{name: "enterprise number cut", msg: message(set(SetTemplate, u16s(300, 1, 0x8001, 4))), want: wire.ErrTruncated, tid: 300, offset: 28},
		{name: "variable-length field past set", msg: message(set(SetTemplate, tmplRec(300, 82, 0xffff)), set(300, []byte{200, 'a'})), want: wire.ErrTruncated, tid: 300, offset: 28},
		{name: "variable-length 255 form cut", msg: message(set(SetTemplate, tmplRec(300, 82, 0xffff)), set(300, []byte{255, 0})), want: wire.ErrTruncated, tid: 300, offset: 28},
		{name: "padding shorter than a record", msg: message(set(SetTemplate, good), set(300, make([]byte, 8), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff}, []byte{0xff, 0xff, 0xff, 0xff, 0x00})), records: 2},
		{name: "reserved set id skipped", msg: message(set(1, []byte{1, 2, 3}), set(SetTemplate, good)), records: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := NewSession(wire.Limits{}).Decode(&m, tt.msg)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if len(m.Records) != tt.records {
					t.Fatalf("%d records, want %d", len(m.Records), tt.records)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *wire.DecodeError", err)
			}
			if de.Format != "ipfix" || de.TemplateID != tt.tid || de.Offset != tt.offset {
				t.Errorf("error %q: format %q template %d offset %d; want ipfix, %d, %d", err, de.Format, de.TemplateID, de.Offset, tt.tid, tt.offset)
			}
			if tt.want != wire.ErrTruncated || len(tt.msg) >= HeaderLen {
				if de.Domain != 9 && tt.name != "truncated header" {
					t.Errorf("domain %d, want 9", de.Domain)
				}
			}
		})
	}
}

func TestWithdrawThenData(t *testing.T) {
	s := NewSession(wire.Limits{})
	var m Message
	tpl := message(set(SetTemplate, tmplRec(300, 8, 4, 12, 4)))
	data := message(set(300, []byte{198, 18, 0, 1, 198, 18, 0, 2}))
	if err := s.Decode(&m, tpl); err != nil || m.Templates != 1 {
		t.Fatalf("template: %v, %d", err, m.Templates)
	}
	if err := s.Decode(&m, data); err != nil || len(m.Records) != 1 {
		t.Fatalf("data: %v, %d records", err, len(m.Records))
	}
	// Withdraw template 300, then data for it is a missing template.
	if err := s.Decode(&m, message(set(SetTemplate, u16s(300, 0)))); err != nil || m.Withdrawn != 1 {
		t.Fatalf("withdraw: %v, %d", err, m.Withdrawn)
	}
	if err := s.Decode(&m, data); err != nil || len(m.Records) != 0 || len(m.Missing) != 1 || m.Missing[0].TemplateID != 300 {
		t.Fatalf("data after withdrawal: %v, %d records, missing %+v", err, len(m.Records), m.Missing)
	}
	held := m.Missing[0]
	held.Body = append([]byte(nil), held.Body...)
	if err := s.DecodeHeld(&m, held); !errors.Is(err, wire.ErrMissingTemplate) {
		t.Fatalf("DecodeHeld without template: %v", err)
	}
	// The template comes back: the held set decodes.
	if err := s.Decode(&m, tpl); err != nil {
		t.Fatal(err)
	}
	if err := s.DecodeHeld(&m, held); err != nil || len(m.Records) != 1 || m.Records[0].Dst.String() != "198.18.0.2" {
		t.Fatalf("DecodeHeld: %v, %+v", err, m.Records)
	}
	// Withdraw all data templates (template id 2 in set 2) but not the
	// options template.
	opt := message(set(SetOptionsTemplate, u16s(301, 2, 1, 10, 4, 82, 0xffff)), set(SetTemplate, tmplRec(302, 8, 4)))
	if err := s.Decode(&m, opt); err != nil || m.Templates != 2 || s.Templates().Len() != 3 {
		t.Fatalf("templates: %v, %d, %d held", err, m.Templates, s.Templates().Len())
	}
	if err := s.Decode(&m, message(set(SetTemplate, u16s(SetTemplate, 0)))); err != nil || m.Withdrawn != 2 {
		t.Fatalf("withdraw all: %v, %d withdrawn", err, m.Withdrawn)
	}
	if s.Templates().Get(9, 301) == nil || s.Templates().Len() != 1 {
		t.Fatalf("withdraw all removed the options template or left data templates")
	}
	if err := s.Decode(&m, message(set(SetOptionsTemplate, u16s(SetOptionsTemplate, 0)))); err != nil || m.Withdrawn != 1 || s.Templates().Len() != 0 {
		t.Fatalf("withdraw all options: %v, %d", err, m.Withdrawn)
	}
}

func TestTemplateBound(t *testing.T) {
	s := NewSession(wire.Limits{MaxTemplates: 1000})
	var m Message
	id := uint16(256)
	var err error
	// 30000 templates in messages of 1000 template records each.
	for batch := 0; batch < 30 && err == nil; batch++ {
		var recs [][]byte
		for range 1000 {
			recs = append(recs, tmplRec(id, 8, 4))
			id++
		}
		err = s.Decode(&m, message(set(SetTemplate, recs...)))
	}
	if !errors.Is(err, wire.ErrTemplateLimit) {
		t.Fatalf("error %v, want template limit", err)
	}
	if s.Templates().Len() != 1000 {
		t.Fatalf("%d templates held, want 1000", s.Templates().Len())
	}
	// Redefining a known template is still accepted.
	if err := s.Decode(&m, message(set(SetTemplate, tmplRec(256, 12, 4)))); err != nil {
		t.Fatalf("redefinition at the limit: %v", err)
	}
}

func TestFieldBound(t *testing.T) {
	s := NewSession(wire.Limits{MaxFields: 4})
	var m Message
	err := s.Decode(&m, message(set(SetTemplate, tmplRec(300, 1, 8, 2, 8, 4, 1, 5, 1, 6, 1))))
	if !errors.Is(err, wire.ErrTemplateLimit) {
		t.Fatalf("error %v", err)
	}
}

// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"errors"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// packet builds a v9 packet from source id 9.
func packet(sets ...[]byte) []byte {
	b := []byte{0, 9, 0, 1, 0, 0, 0x10, 0, 0x69, 0x57, 0x35, 0xa5, 0, 0, 0, 0, 0, 0, 0, 9}
	for _, s := range sets {
		b = append(b, s...)
	}
	return b
}

// Message builders: flowset(id, body...) a set, u16s(v...) big-endian
// 16-bit values, tmplRec(id, type, length, ...) a template record.
var flowset, u16s, tmplRec = wiretest.Set, wiretest.U16s, wiretest.TemplateRecord

func TestMalformed(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		want   error
		tid    uint16
		offset int
	}{
		{name: "truncated header", msg: packet()[:19], want: wire.ErrTruncated},
		{name: "version 10", msg: append([]byte{0, 10}, packet()[2:]...), want: wire.ErrVersion},
		{name: "flowset length past end", msg: packet(u16s(256, 200)), want: wire.ErrTruncated, tid: 256, offset: 20},
		{name: "zero-length flowset", msg: packet(u16s(256, 0)), want: wire.ErrLength, tid: 256, offset: 20},
		{name: "field count 0xffff", msg: packet(flowset(SetTemplate, u16s(300, 0xffff, 8, 4))), want: wire.ErrTemplateLimit, tid: 300, offset: 24},
		{name: "field count past flowset", msg: packet(flowset(SetTemplate, u16s(300, 3, 8, 4))), want: wire.ErrTruncated, tid: 300, offset: 24},
		{name: "field length 0", msg: packet(flowset(SetTemplate, tmplRec(300, 8, 4, 12, 0))), want: wire.ErrTemplate, tid: 300, offset: 24},
		{name: "template id 255", msg: packet(flowset(SetTemplate, tmplRec(255, 8, 4))), want: wire.ErrTemplate, tid: 255, offset: 24},
		{name: "options template zero scope", msg: packet(flowset(SetOptionsTemplate, u16s(300, 0, 4, 34, 4))), want: wire.ErrTemplate, tid: 300, offset: 24},
		{name: "options scope length 3", msg: packet(flowset(SetOptionsTemplate, u16s(300, 3, 4, 1, 4, 34, 4))), want: wire.ErrTemplate, tid: 300, offset: 24},
		{name: "options fields past flowset", msg: packet(flowset(SetOptionsTemplate, u16s(300, 4, 400, 1, 4))), want: wire.ErrTruncated, tid: 300, offset: 24},
		{name: "options field count above limit", msg: packet(flowset(SetOptionsTemplate, u16s(300, 4, 0xfff0, 1, 4))), want: wire.ErrTemplateLimit, tid: 300, offset: 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := NewSession(wire.Limits{}).Decode(&m, tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *wire.DecodeError", err)
			}
			if de.Format != "netflow9" || de.TemplateID != tt.tid || de.Offset != tt.offset {
				t.Errorf("error %q: template %d offset %d; want %d, %d", err, de.TemplateID, de.Offset, tt.tid, tt.offset)
			}
			if tt.name != "truncated header" && de.Domain != 9 {
				t.Errorf("source id %d, want 9", de.Domain)
			}
		})
	}
}

func TestWithdrawThenData(t *testing.T) {
	s := NewSession(wire.Limits{})
	var m Message
	tpl := packet(flowset(SetTemplate, tmplRec(300, 8, 4, 12, 4)))
	data := packet(flowset(300, []byte{198, 18, 0, 1, 198, 18, 0, 2}))
	if err := s.Decode(&m, tpl); err != nil || m.Templates != 1 {
		t.Fatalf("template: %v", err)
	}
	if err := s.Decode(&m, data); err != nil || len(m.Records) != 1 {
		t.Fatalf("data: %v, %d", err, len(m.Records))
	}
	if err := s.Decode(&m, packet(flowset(SetTemplate, u16s(300, 0)))); err != nil || m.Withdrawn != 1 {
		t.Fatalf("withdraw: %v, %d", err, m.Withdrawn)
	}
	if err := s.Decode(&m, data); err != nil || len(m.Records) != 0 || len(m.Missing) != 1 {
		t.Fatalf("data after withdrawal: %v, %+v", err, m.Missing)
	}
	held := m.Missing[0]
	if err := s.DecodeHeld(&m, held); !errors.Is(err, wire.ErrMissingTemplate) {
		t.Fatalf("DecodeHeld: %v", err)
	}
	if err := s.Decode(&m, tpl); err != nil {
		t.Fatal(err)
	}
	if err := s.DecodeHeld(&m, held); err != nil || len(m.Records) != 1 {
		t.Fatalf("DecodeHeld: %v, %d", err, len(m.Records))
	}
}

func TestTemplateBound(t *testing.T) {
	s := NewSession(wire.Limits{MaxTemplates: 500})
	var m Message
	id := uint16(256)
	var err error
	for batch := 0; batch < 20 && err == nil; batch++ {
		var recs [][]byte
		for range 1000 {
			recs = append(recs, tmplRec(id, 8, 4))
			id++
		}
		err = s.Decode(&m, packet(flowset(SetTemplate, recs...)))
	}
	if !errors.Is(err, wire.ErrTemplateLimit) || s.Templates().Len() != 500 {
		t.Fatalf("error %v, %d templates held", err, s.Templates().Len())
	}
}

// TestOptionsScopes: v9 scope types are not field types; the interface
// scope maps to the interface index, the system scope is ignored.
func TestOptionsScopes(t *testing.T) {
	s := NewSession(wire.Limits{})
	var m Message
	opt := u16s(300, 8, 8, ScopeSystem, 4, ScopeInterface, 4, 82, 4, 34, 4)
	rec := []byte{0, 0, 0, 1, 0, 0, 0, 5, 'e', 't', 'h', 0, 0, 0, 0, 10}
	if err := s.Decode(&m, packet(flowset(SetOptionsTemplate, opt, []byte{0, 0}), flowset(300, rec))); err != nil {
		t.Fatal(err)
	}
	if len(m.Interfaces) != 1 || m.Interfaces[0] != (wire.Interface{Domain: 9, Index: 5, Name: "eth"}) {
		t.Errorf("interfaces %+v", m.Interfaces)
	}
	if len(m.Sampling) != 1 || m.Sampling[0].Interval != 10 {
		t.Errorf("sampling %+v", m.Sampling)
	}
}

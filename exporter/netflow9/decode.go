// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"
	"fmt"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Message is a decoded NetFlow v9 export packet.
type Message struct {
	Header Header
	wire.Data
}

// Session holds the templates learned from one exporter. The caller scopes
// it (exporter address and port, source id); templates are keyed by source
// id inside. It is not safe for concurrent use.
type Session struct {
	tpls   *wire.Templates
	fields []wire.Field
}

// NewSession returns a session with the given limits; zero fields of l
// take the defaults.
func NewSession(l wire.Limits) *Session {
	return &Session{tpls: wire.NewTemplates(l)}
}

// Templates returns the session's template store.
func (s *Session) Templates() *wire.Templates { return s.tpls }

// Decode decodes one export packet into dst, which it resets first.
// Template flowsets update the session; data flowsets whose template is
// unknown are listed in dst.Missing. Malformed input returns a
// *wire.DecodeError; dst then holds what was decoded before the error. The
// header's record count is not trusted (exporters get it wrong) and not
// checked.
func (s *Session) Decode(dst *Message, b []byte) error {
	dst.Data.Reset()
	h, err := ParseHeader(b)
	dst.Header = h
	if err != nil {
		return err
	}
	ctx := wire.Context{Domain: h.SourceID, ExportMs: h.ExportTime.Unix() * 1000, UptimeMs: int64(h.SysUptime)}
	for off := HeaderLen; off < len(b); {
		if len(b)-off < 4 {
			// Trailing octets too short for a FlowSet header: padding.
			break
		}
		id := binary.BigEndian.Uint16(b[off:])
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if n < 4 {
			return s.errorf(h, id, off, "flowset length %d shorter than flowset header: %w", n, wire.ErrLength)
		}
		if off+n > len(b) {
			return s.errorf(h, id, off, "flowset length %d past end of packet (%d octets left): %w", n, len(b)-off, wire.ErrTruncated)
		}
		body := b[off+4 : off+n]
		switch {
		case id == SetTemplate:
			if err := s.templateSet(dst, h, body, off+4); err != nil {
				return err
			}
		case id == SetOptionsTemplate:
			if err := s.optionsTemplateSet(dst, h, body, off+4); err != nil {
				return err
			}
		case id >= MinDataSetID:
			if err := s.tpls.DecodeData(&dst.Data, &ctx, id, body, off+4); err != nil {
				return s.errorf(h, id, off, "data flowset: %w", err)
			}
		default:
			// FlowSet ids 2-255 are reserved: skip.
		}
		off += n
	}
	return nil
}

// DecodeHeld decodes a data flowset that was reported missing its
// template, appending to dst without resetting it. It returns an error
// wrapping wire.ErrMissingTemplate when the template is still unknown.
func (s *Session) DecodeHeld(dst *Message, m wire.MissingSet) error {
	if err := s.tpls.DecodeHeld(&dst.Data, &m); err != nil {
		return s.errorf(Header{Version: Version, SourceID: m.Domain}, m.TemplateID, m.Offset, "held data flowset: %w", err)
	}
	return nil
}

func (s *Session) errorf(h Header, tid uint16, off int, format string, args ...any) error {
	return &wire.DecodeError{Format: "netflow9", Version: h.Version, Domain: h.SourceID, TemplateID: tid, Offset: off, Err: fmt.Errorf(format, args...)}
}

// templateSet parses a Template FlowSet body (RFC 3954 section 5.2). A
// template record with field count 0 withdraws the template.
func (s *Session) templateSet(dst *Message, h Header, body []byte, base int) error {
	lim := s.tpls.Limits()
	for p := 0; len(body)-p >= 4; {
		id := binary.BigEndian.Uint16(body[p:])
		count := int(binary.BigEndian.Uint16(body[p+2:]))
		if id == 0 && count == 0 {
			break // padding
		}
		if id < MinDataSetID {
			return s.errorf(h, id, base+p, "template id %d below %d: %w", id, MinDataSetID, wire.ErrTemplate)
		}
		if count == 0 {
			if s.tpls.Withdraw(h.SourceID, id) {
				dst.Withdrawn++
			}
			p += 4
			continue
		}
		if count > lim.MaxFields {
			return s.errorf(h, id, base+p, "%d fields, limit %d: %w", count, lim.MaxFields, wire.ErrTemplateLimit)
		}
		if len(body)-p-4 < 4*count {
			return s.errorf(h, id, base+p, "%d field specifiers need %d octets, have %d: %w", count, 4*count, len(body)-p-4, wire.ErrTruncated)
		}
		s.fields = s.fields[:0]
		for i := 0; i < count; i++ {
			q := p + 4 + 4*i
			s.fields = append(s.fields, wire.Field{ID: binary.BigEndian.Uint16(body[q:]), Length: binary.BigEndian.Uint16(body[q+2:])})
		}
		if err := s.tpls.Put(h.SourceID, id, 0, s.fields); err != nil {
			return s.errorf(h, id, base+p, "template: %w", err)
		}
		dst.Templates++
		p += 4 + 4*count
	}
	return nil
}

// optionsTemplateSet parses an Options Template FlowSet body (RFC 3954
// section 6.1): template id, option scope length and option length in
// octets, the scope fields, the option fields, padding.
func (s *Session) optionsTemplateSet(dst *Message, h Header, body []byte, base int) error {
	lim := s.tpls.Limits()
	for p := 0; len(body)-p >= 6; {
		id := binary.BigEndian.Uint16(body[p:])
		scopeLen := int(binary.BigEndian.Uint16(body[p+2:]))
		optLen := int(binary.BigEndian.Uint16(body[p+4:]))
		if id == 0 {
			break // padding
		}
		if id < MinDataSetID {
			return s.errorf(h, id, base+p, "options template id %d below %d: %w", id, MinDataSetID, wire.ErrTemplate)
		}
		if scopeLen == 0 && optLen == 0 {
			if s.tpls.Withdraw(h.SourceID, id) {
				dst.Withdrawn++
			}
			p += 6
			continue
		}
		if scopeLen == 0 {
			return s.errorf(h, id, base+p, "options template with zero scope length: %w", wire.ErrTemplate)
		}
		if scopeLen%4 != 0 || optLen%4 != 0 {
			return s.errorf(h, id, base+p, "scope length %d or option length %d not a multiple of 4: %w", scopeLen, optLen, wire.ErrTemplate)
		}
		count := (scopeLen + optLen) / 4
		if count > lim.MaxFields {
			return s.errorf(h, id, base+p, "%d fields, limit %d: %w", count, lim.MaxFields, wire.ErrTemplateLimit)
		}
		if len(body)-p-6 < scopeLen+optLen {
			return s.errorf(h, id, base+p, "field specifiers need %d octets, have %d: %w", scopeLen+optLen, len(body)-p-6, wire.ErrTruncated)
		}
		s.fields = s.fields[:0]
		for i := 0; i < count; i++ {
			q := p + 6 + 4*i
			f := wire.Field{ID: binary.BigEndian.Uint16(body[q:]), Length: binary.BigEndian.Uint16(body[q+2:])}
			if i < scopeLen/4 {
				// Scope field types are not field types: map the interface
				// scope to ingressInterface, ignore the others.
				if f.ID == ScopeInterface {
					f.ID = wire.IEIngressInterface
				} else {
					f.ID = 0
				}
			}
			s.fields = append(s.fields, f)
		}
		if err := s.tpls.Put(h.SourceID, id, scopeLen/4, s.fields); err != nil {
			return s.errorf(h, id, base+p, "options template: %w", err)
		}
		dst.Templates++
		p += 6 + scopeLen + optLen
	}
	return nil
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"fmt"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Message is a decoded IPFIX message: its header, the flow records and
// options data it carried, and the data sets still waiting for a template.
type Message struct {
	Header Header
	wire.Data
}

// Session holds the templates learned from one exporter's transport
// session. The caller scopes it (for instance by exporter address and
// port, and observation domain; templates are keyed by domain inside, so a
// session shared by several domains is also correct). It is not safe for
// concurrent use.
type Session struct {
	tpls   *wire.Templates
	fields []wire.Field // scratch for template parsing
}

// NewSession returns a session with the given limits; zero fields of l
// take the defaults.
func NewSession(l wire.Limits) *Session {
	return &Session{tpls: wire.NewTemplates(l)}
}

// Templates returns the session's template store.
func (s *Session) Templates() *wire.Templates { return s.tpls }

// Decode decodes one IPFIX message (one UDP payload, or one message from
// ReadMessage) into dst, which it resets first. Template sets update the
// session; data sets whose template is unknown are listed in dst.Missing.
// Malformed input returns a *wire.DecodeError; dst then holds what was
// decoded before the error.
func (s *Session) Decode(dst *Message, b []byte) error {
	dst.Data.Reset()
	h, err := ParseHeader(b)
	dst.Header = h
	if err != nil {
		return err
	}
	if int(h.Length) != len(b) {
		return s.errorf(h, 0, 2, "message length %d, datagram %d octets: %w", h.Length, len(b), wire.ErrLength)
	}
	ctx := wire.Context{Domain: h.Domain, ExportMs: h.ExportTime.Unix() * 1000, UptimeMs: -1}
	for off := HeaderLen; off < len(b); {
		if len(b)-off < 4 {
			return s.errorf(h, 0, off, "set header needs 4 octets, have %d: %w", len(b)-off, wire.ErrTruncated)
		}
		id := binary.BigEndian.Uint16(b[off:])
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if n < 4 {
			return s.errorf(h, id, off, "set length %d shorter than set header: %w", n, wire.ErrLength)
		}
		if off+n > len(b) {
			return s.errorf(h, id, off, "set length %d past end of message (%d octets left): %w", n, len(b)-off, wire.ErrTruncated)
		}
		body := b[off+4 : off+n]
		switch {
		case id == SetTemplate || id == SetOptionsTemplate:
			if err := s.templateSet(dst, h, id, body, off+4); err != nil {
				return err
			}
		case id >= MinDataSetID:
			if err := s.tpls.DecodeData(&dst.Data, &ctx, id, body, off+4); err != nil {
				return s.errorf(h, id, off, "data set: %w", err)
			}
		default:
			// Set ids 0, 1 and 4-255 are not used by IPFIX: skip.
		}
		off += n
	}
	return nil
}

// DecodeHeld decodes a data set that was reported missing its template,
// now that the template may be known, appending to dst without resetting
// it. It returns an error wrapping wire.ErrMissingTemplate when the
// template is still unknown.
func (s *Session) DecodeHeld(dst *Message, m wire.MissingSet) error {
	if err := s.tpls.DecodeHeld(&dst.Data, &m); err != nil {
		return s.errorf(Header{Version: Version, Domain: m.Domain}, m.TemplateID, m.Offset, "held data set: %w", err)
	}
	return nil
}

func (s *Session) errorf(h Header, tid uint16, off int, format string, args ...any) error {
	return &wire.DecodeError{Format: "ipfix", Version: h.Version, Domain: h.Domain, TemplateID: tid, Offset: off, Err: fmt.Errorf(format, args...)}
}

// templateSet parses a Template Set (id 2) or Options Template Set (id 3)
// body starting at message offset base.
func (s *Session) templateSet(dst *Message, h Header, setID uint16, body []byte, base int) error {
	options := setID == SetOptionsTemplate
	lim := s.tpls.Limits()
	for p := 0; len(body)-p >= 4; {
		id := binary.BigEndian.Uint16(body[p:])
		count := int(binary.BigEndian.Uint16(body[p+2:]))
		if id == 0 && count == 0 {
			break // padding (RFC 7011 section 3.3.1)
		}
		if count == 0 {
			// Template withdrawal (RFC 7011 section 8.1). A template id
			// equal to the set id withdraws all (options) templates.
			switch {
			case id == setID:
				dst.Withdrawn += s.tpls.WithdrawAll(h.Domain, options)
			case id >= MinDataSetID:
				if s.tpls.Withdraw(h.Domain, id) {
					dst.Withdrawn++
				}
			default:
				return s.errorf(h, id, base+p, "withdrawal of reserved template id %d: %w", id, wire.ErrTemplate)
			}
			p += 4
			continue
		}
		if id < MinDataSetID {
			return s.errorf(h, id, base+p, "template id %d below %d: %w", id, MinDataSetID, wire.ErrTemplate)
		}
		if count > lim.MaxFields {
			return s.errorf(h, id, base+p, "%d fields, limit %d: %w", count, lim.MaxFields, wire.ErrTemplateLimit)
		}
		hdr := 4
		scope := 0
		if options {
			if len(body)-p < 6 {
				return s.errorf(h, id, base+p, "options template header: %w", wire.ErrTruncated)
			}
			scope = int(binary.BigEndian.Uint16(body[p+4:]))
			hdr = 6
			if scope == 0 {
				return s.errorf(h, id, base+p, "options template with zero scope fields: %w", wire.ErrTemplate)
			}
			if scope > count {
				return s.errorf(h, id, base+p, "scope field count %d above field count %d: %w", scope, count, wire.ErrTemplate)
			}
		}
		q := p + hdr
		s.fields = s.fields[:0]
		for i := 0; i < count; i++ {
			if len(body)-q < 4 {
				return s.errorf(h, id, base+q, "field specifier %d of %d: %w", i, count, wire.ErrTruncated)
			}
			f := wire.Field{ID: binary.BigEndian.Uint16(body[q:]), Length: binary.BigEndian.Uint16(body[q+2:])}
			q += 4
			if f.ID&0x8000 != 0 {
				// Enterprise bit: a 4-octet enterprise number follows.
				if len(body)-q < 4 {
					return s.errorf(h, id, base+q, "enterprise number of field %d: %w", i, wire.ErrTruncated)
				}
				f.ID &= 0x7fff
				f.Enterprise = binary.BigEndian.Uint32(body[q:])
				q += 4
			}
			s.fields = append(s.fields, f)
		}
		if err := s.tpls.Put(h.Domain, id, scope, s.fields); err != nil {
			return s.errorf(h, id, base+p, "template: %w", err)
		}
		dst.Templates++
		p = q
	}
	return nil
}

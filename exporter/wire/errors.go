// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors wrapped by every decode error. Callers branch on them with
// errors.Is; the DecodeError around them says where the input went wrong.
var (
	// ErrTruncated: a header, set, template or record ends past the data.
	ErrTruncated = errors.New("truncated")
	// ErrVersion: the message header carries another protocol version.
	ErrVersion = errors.New("unsupported version")
	// ErrLength: a length field is impossible (shorter than its own header,
	// longer than the message, zero where it must not be).
	ErrLength = errors.New("bad length")
	// ErrTemplate: a template or options template record is malformed.
	ErrTemplate = errors.New("malformed template")
	// ErrTemplateLimit: the session already holds the maximum number of
	// templates, or a template has more fields than allowed.
	ErrTemplateLimit = errors.New("template limit reached")
	// ErrMissingTemplate: a data set refers to a template the session does
	// not know (yet). Decoders report such sets in Data.Missing instead of
	// failing; DecodeHeld returns it when the template is still unknown.
	ErrMissingTemplate = errors.New("missing template")
	// ErrMTU: the configured message size cannot hold a single record.
	ErrMTU = errors.New("mtu too small")
)

// DecodeError is the error returned by the decoders: the protocol, where in
// the message the problem is, and a wrapped sentinel saying what it is.
type DecodeError struct {
	Format     string // "ipfix", "netflow9", "netflow5"
	Version    uint16 // version found in the header, 0 when unknown
	Domain     uint32 // observation domain (IPFIX) or source id (v9)
	TemplateID uint16 // set or template id involved, 0 when none
	Offset     int    // byte offset in the message
	Err        error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Format)
	if e.Version != 0 {
		fmt.Fprintf(&b, " v%d", e.Version)
	}
	fmt.Fprintf(&b, " domain %d", e.Domain)
	if e.TemplateID != 0 {
		fmt.Fprintf(&b, " template %d", e.TemplateID)
	}
	fmt.Fprintf(&b, " at offset %d: %v", e.Offset, e.Err)
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// SPDX-License-Identifier: Apache-2.0

// Package ipfix encodes flow records as IPFIX messages (RFC 7011) and
// decodes IPFIX messages from any exporter back into flow records and
// options data.
package ipfix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Version is the IPFIX message header version number.
const Version = 10

// HeaderLen is the length of the IPFIX message header.
const HeaderLen = 16

// Set ids (RFC 7011 section 3.3.2).
const (
	SetTemplate        uint16 = 2   // Template Set
	SetOptionsTemplate uint16 = 3   // Options Template Set
	MinDataSetID       uint16 = 256 // Data Sets use template ids 256 and up
)

// Header is the IPFIX message header (RFC 7011 section 3.1).
type Header struct {
	Version uint16 // 0x000a
	// Length is the total length of the message in octets, including the
	// header and sets.
	Length uint16
	// ExportTime is the time at which the message left the exporter, with
	// one-second resolution.
	ExportTime time.Time
	// Sequence is the counter, modulo 2^32, of all data records sent in
	// the current stream from the current observation domain before this
	// message.
	Sequence uint32
	// Domain is the observation domain id, locally unique to the exporter.
	Domain uint32
}

func putHeader(b []byte, h Header) {
	binary.BigEndian.PutUint16(b[0:], Version)
	binary.BigEndian.PutUint16(b[2:], h.Length)
	binary.BigEndian.PutUint32(b[4:], uint32(h.ExportTime.Unix()))
	binary.BigEndian.PutUint32(b[8:], h.Sequence)
	binary.BigEndian.PutUint32(b[12:], h.Domain)
}

// ParseHeader decodes and checks the header of message b: version, and a
// length field that is at least a header and no more than len(b). Use it
// to pick the Session of a message's observation domain.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, &wire.DecodeError{Format: "ipfix", Err: fmt.Errorf("header needs %d octets, have %d: %w", HeaderLen, len(b), wire.ErrTruncated)}
	}
	h := Header{
		Version:    binary.BigEndian.Uint16(b[0:]),
		Length:     binary.BigEndian.Uint16(b[2:]),
		ExportTime: time.Unix(int64(binary.BigEndian.Uint32(b[4:])), 0).UTC(),
		Sequence:   binary.BigEndian.Uint32(b[8:]),
		Domain:     binary.BigEndian.Uint32(b[12:]),
	}
	if h.Version != Version {
		return h, &wire.DecodeError{Format: "ipfix", Version: h.Version, Domain: h.Domain, Err: fmt.Errorf("version %d: %w", h.Version, wire.ErrVersion)}
	}
	if int(h.Length) < HeaderLen {
		return h, &wire.DecodeError{Format: "ipfix", Version: h.Version, Domain: h.Domain, Offset: 2, Err: fmt.Errorf("message length %d shorter than header: %w", h.Length, wire.ErrLength)}
	}
	if int(h.Length) > len(b) {
		return h, &wire.DecodeError{Format: "ipfix", Version: h.Version, Domain: h.Domain, Offset: 2, Err: fmt.Errorf("message length %d, have %d octets: %w", h.Length, len(b), wire.ErrTruncated)}
	}
	return h, nil
}

// ReadMessage reads one IPFIX message from a stream (TCP, RFC 7011 section
// 10.4) into buf, growing it when needed, and returns the message. It
// checks the version and that the length covers at least the header. At a
// clean end of stream it returns io.EOF; a message cut short returns an
// error wrapping io.ErrUnexpectedEOF.
func ReadMessage(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < HeaderLen {
		buf = make([]byte, 0, 1<<16)
	}
	buf = buf[:HeaderLen]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read ipfix header: %w", err)
	}
	version := binary.BigEndian.Uint16(buf[0:])
	n := int(binary.BigEndian.Uint16(buf[2:]))
	domain := binary.BigEndian.Uint32(buf[12:])
	if version != Version {
		return nil, &wire.DecodeError{Format: "ipfix", Version: version, Domain: domain, Err: fmt.Errorf("version %d: %w", version, wire.ErrVersion)}
	}
	if n < HeaderLen {
		return nil, &wire.DecodeError{Format: "ipfix", Version: version, Domain: domain, Offset: 2, Err: fmt.Errorf("message length %d shorter than header: %w", n, wire.ErrLength)}
	}
	if cap(buf) < n {
		nb := make([]byte, n, 1<<16)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf[HeaderLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read ipfix message of %d octets, domain %d: %w", n, domain, err)
	}
	return buf, nil
}

// SPDX-License-Identifier: Apache-2.0

// Package netflow9 encodes flow records as NetFlow version 9 export packets
// (RFC 3954) and decodes NetFlow v9 packets from any exporter back into
// flow records and options data.
package netflow9

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Version is the NetFlow v9 packet header version number.
const Version = 9

// HeaderLen is the length of the packet header.
const HeaderLen = 20

// FlowSet ids (RFC 3954 section 5).
const (
	SetTemplate        uint16 = 0   // Template FlowSet
	SetOptionsTemplate uint16 = 1   // Options Template FlowSet
	MinDataSetID       uint16 = 256 // Data FlowSets use template ids 256 and up
)

// Options scope field types (RFC 3954 section 6.1).
const (
	ScopeSystem    uint16 = 1
	ScopeInterface uint16 = 2
	ScopeLineCard  uint16 = 3
	ScopeCache     uint16 = 4
	ScopeTemplate  uint16 = 5
)

// Header is the NetFlow v9 packet header (RFC 3954 section 5.1).
type Header struct {
	Version uint16 // 9
	// Count is the total number of records in the packet: template,
	// options template and data records.
	Count uint16
	// SysUptime is the time in milliseconds since the device booted.
	SysUptime uint32
	// ExportTime is the time the packet was sent (unix_secs).
	ExportTime time.Time
	// Sequence counts all export packets sent by the exporter before this
	// one.
	Sequence uint32
	// SourceID identifies the exporter observation domain.
	SourceID uint32
}

func putHeader(b []byte, h Header) {
	binary.BigEndian.PutUint16(b[0:], Version)
	binary.BigEndian.PutUint16(b[2:], h.Count)
	binary.BigEndian.PutUint32(b[4:], h.SysUptime)
	binary.BigEndian.PutUint32(b[8:], uint32(h.ExportTime.Unix()))
	binary.BigEndian.PutUint32(b[12:], h.Sequence)
	binary.BigEndian.PutUint32(b[16:], h.SourceID)
}

// ParseHeader decodes and checks the header of packet b. Use it to pick
// the Session of a packet's source id.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, &wire.DecodeError{Format: "netflow9", Err: fmt.Errorf("header needs %d octets, have %d: %w", HeaderLen, len(b), wire.ErrTruncated)}
	}
	h := Header{
		Version:    binary.BigEndian.Uint16(b[0:]),
		Count:      binary.BigEndian.Uint16(b[2:]),
		SysUptime:  binary.BigEndian.Uint32(b[4:]),
		ExportTime: time.Unix(int64(binary.BigEndian.Uint32(b[8:])), 0).UTC(),
		Sequence:   binary.BigEndian.Uint32(b[12:]),
		SourceID:   binary.BigEndian.Uint32(b[16:]),
	}
	if h.Version != Version {
		return h, &wire.DecodeError{Format: "netflow9", Version: h.Version, Domain: h.SourceID, Err: fmt.Errorf("version %d: %w", h.Version, wire.ErrVersion)}
	}
	return h, nil
}

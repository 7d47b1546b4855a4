// SPDX-License-Identifier: Apache-2.0

// Package netflow5 encodes IPv4 flow records as NetFlow version 5 export
// packets and decodes them back into flow records.
package netflow5

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Wire constants of NetFlow v5.
const (
	Version    = 5
	HeaderLen  = 24
	RecordLen  = 48
	MaxRecords = 30 // records per packet
)

// Sampling modes of the header's sampling_interval field (top two bits).
const (
	SamplingNone          = 0
	SamplingDeterministic = 1 // packet interval
	SamplingRandom        = 2
)

// MaxSamplingInterval is the largest interval the 14-bit field holds.
const MaxSamplingInterval = 1<<14 - 1

// Header is the NetFlow v5 packet header.
type Header struct {
	Version uint16
	Count   uint16 // number of flow records in the packet, 1-30
	// SysUptime is the current time in ms since the export device booted.
	SysUptime uint32
	// ExportTime is unix_secs and unix_nsecs.
	ExportTime time.Time
	// FlowSequence counts the flows exported before this packet.
	FlowSequence uint32
	EngineType   uint8
	EngineID     uint8
	// SamplingMode (2 bits) and SamplingInterval (14 bits).
	SamplingMode     uint8
	SamplingInterval uint16
}

// Domain returns engine type and id as one observation domain number.
func (h *Header) Domain() uint32 { return uint32(h.EngineType)<<8 | uint32(h.EngineID) }

func putHeader(b []byte, h Header) {
	binary.BigEndian.PutUint16(b[0:], Version)
	binary.BigEndian.PutUint16(b[2:], h.Count)
	binary.BigEndian.PutUint32(b[4:], h.SysUptime)
	binary.BigEndian.PutUint32(b[8:], uint32(h.ExportTime.Unix()))
	binary.BigEndian.PutUint32(b[12:], uint32(h.ExportTime.Nanosecond()))
	binary.BigEndian.PutUint32(b[16:], h.FlowSequence)
	b[20] = h.EngineType
	b[21] = h.EngineID
	binary.BigEndian.PutUint16(b[22:], uint16(h.SamplingMode)<<14|h.SamplingInterval&MaxSamplingInterval)
}

// ParseHeader decodes and checks a packet header: version, and that the
// packet holds Count records.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, &wire.DecodeError{Format: "netflow5", Err: fmt.Errorf("header needs %d octets, have %d: %w", HeaderLen, len(b), wire.ErrTruncated)}
	}
	si := binary.BigEndian.Uint16(b[22:])
	h := Header{
		Version:          binary.BigEndian.Uint16(b[0:]),
		Count:            binary.BigEndian.Uint16(b[2:]),
		SysUptime:        binary.BigEndian.Uint32(b[4:]),
		ExportTime:       time.Unix(int64(binary.BigEndian.Uint32(b[8:])), int64(binary.BigEndian.Uint32(b[12:])%1e9)).UTC(),
		FlowSequence:     binary.BigEndian.Uint32(b[16:]),
		EngineType:       b[20],
		EngineID:         b[21],
		SamplingMode:     uint8(si >> 14),
		SamplingInterval: si & MaxSamplingInterval,
	}
	if h.Version != Version {
		return h, &wire.DecodeError{Format: "netflow5", Version: h.Version, Domain: h.Domain(), Err: fmt.Errorf("version %d: %w", h.Version, wire.ErrVersion)}
	}
	if need := HeaderLen + RecordLen*int(h.Count); len(b) < need {
		return h, &wire.DecodeError{Format: "netflow5", Version: h.Version, Domain: h.Domain(), Offset: 2, Err: fmt.Errorf("count %d needs %d octets, have %d: %w", h.Count, need, len(b), wire.ErrTruncated)}
	}
	return h, nil
}

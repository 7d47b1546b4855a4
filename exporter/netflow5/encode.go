// SPDX-License-Identifier: Apache-2.0

package netflow5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// ErrNotIPv4 reports records that NetFlow v5 cannot carry: it has IPv4
// fields only. Encode skips such records and returns a *SkippedError
// wrapping ErrNotIPv4 so that the caller counts them.
var ErrNotIPv4 = errors.New("not an ipv4 record")

// SkippedError says how many records Encode could not encode.
type SkippedError struct {
	Skipped int
	Err     error
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("netflow5 encoder: skipped %d records: %v", e.Skipped, e.Err)
}

func (e *SkippedError) Unwrap() error { return e.Err }

// DefaultMTU is the default maximum packet size; it holds 28 records.
const DefaultMTU = 1400

// MinMTU is the smallest packet size accepted: a header and one record.
const MinMTU = HeaderLen + RecordLen

// asTrans is the 2-octet AS number standing for a 4-octet one (RFC 6793).
const asTrans = 23456

// Config configures an Encoder. Zero fields take the defaults.
type Config struct {
	EngineType, EngineID uint8
	// MTU bounds the packet size; records per packet are
	// min(30, (MTU-24)/48). Default DefaultMTU.
	MTU int
	// SamplingInterval > 1 announces 1-in-N sampling in the header
	// (clamped to 14 bits): random (mode 2) with SamplingRandom,
	// deterministic (mode 1) otherwise.
	SamplingInterval uint32
	SamplingRandom   bool
	// SystemInit is the instant sysUptime counts from; default Clock() at
	// NewEncoder.
	SystemInit time.Time
	// Clock returns the export time; default time.Now.
	Clock func() time.Time
}

// Packet is one encoded export packet.
type Packet struct {
	Bytes    []byte // reused once the emit function returns
	Records  int    // v5 records in the packet
	Sequence uint32 // the header's flow_sequence
}

// Encoder packs IPv4 flow records into NetFlow v5 packets. It is not safe
// for concurrent use.
type Encoder struct {
	cfg    Config
	max    int
	buf    []byte
	n      int
	initMs int64
	seq    uint32
}

// NewEncoder returns a v5 encoder.
func NewEncoder(cfg Config) (*Encoder, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > 65535 {
		return nil, fmt.Errorf("netflow5 encoder: mtu %d outside [%d, 65535]: %w", cfg.MTU, MinMTU, wire.ErrMTU)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = cfg.Clock()
	}
	max := min(MaxRecords, (cfg.MTU-HeaderLen)/RecordLen)
	return &Encoder{
		cfg:    cfg,
		max:    max,
		buf:    make([]byte, HeaderLen+max*RecordLen),
		initMs: cfg.SystemInit.UnixMilli(),
	}, nil
}

// RecordsPerPacket returns how many records a packet holds.
func (e *Encoder) RecordsPerPacket() int { return e.max }

// Encode packs recs into packets and hands each to emit; nothing stays
// buffered when it returns. Records with packet or octet counts above
// 2^32-1 are split into several v5 records whose counts add up to the
// exact totals. Non-IPv4 records are skipped and reported in a
// *SkippedError wrapping ErrNotIPv4, after the IPv4 records are sent. It
// returns the number of v5 records in packets emit accepted; an emit error
// stops encoding.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	sent, skipped := 0, 0
	e.n = 0
	for i := range recs {
		r := &recs[i]
		if !r.Src.Is4() || !r.Dst.Is4() {
			skipped++
			continue
		}
		pieces := uint64(1)
		if r.Packets > math.MaxUint32 || r.Octets > math.MaxUint32 {
			pieces = max(ceilDiv(r.Packets, math.MaxUint32), ceilDiv(r.Octets, math.MaxUint32))
		}
		for k := uint64(0); k < pieces; k++ {
			pk := r.Packets / pieces
			if k < r.Packets%pieces {
				pk++
			}
			ok := r.Octets / pieces
			if k < r.Octets%pieces {
				ok++
			}
			e.putRecord(e.buf[HeaderLen+e.n*RecordLen:], r, uint32(pk), uint32(ok))
			e.n++
			if e.n == e.max {
				if err := e.flush(emit, &sent); err != nil {
					return sent, err
				}
			}
		}
	}
	if e.n > 0 {
		if err := e.flush(emit, &sent); err != nil {
			return sent, err
		}
	}
	if skipped > 0 {
		return sent, &SkippedError{Skipped: skipped, Err: ErrNotIPv4}
	}
	return sent, nil
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

func clamp16(v uint32) uint16 {
	if v > math.MaxUint16 {
		return math.MaxUint16
	}
	return uint16(v)
}

func as16(v uint32) uint16 {
	if v > math.MaxUint16 {
		return asTrans
	}
	return uint16(v)
}

func (e *Encoder) uptime(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	return uint32(t.UnixMilli() - e.initMs)
}

// putRecord writes one 48-octet record. Interface indexes above 65535 are
// clamped to 65535, 4-octet AS numbers become AS_TRANS (23456).
func (e *Encoder) putRecord(b []byte, r *flow.Record, pkts, octets uint32) {
	src, dst := r.Src.As4(), r.Dst.As4()
	copy(b[0:4], src[:])
	copy(b[4:8], dst[:])
	if r.NextHop.Is4() {
		nh := r.NextHop.As4()
		copy(b[8:12], nh[:])
	} else {
		clear(b[8:12])
	}
	binary.BigEndian.PutUint16(b[12:], clamp16(r.InIf))
	binary.BigEndian.PutUint16(b[14:], clamp16(r.OutIf))
	binary.BigEndian.PutUint32(b[16:], pkts)
	binary.BigEndian.PutUint32(b[20:], octets)
	binary.BigEndian.PutUint32(b[24:], e.uptime(r.Start))
	binary.BigEndian.PutUint32(b[28:], e.uptime(r.End))
	sport, dport := r.SrcPort, r.DstPort
	if r.IsICMP() {
		sport, dport = 0, r.ICMPTypeCode()
	}
	binary.BigEndian.PutUint16(b[32:], sport)
	binary.BigEndian.PutUint16(b[34:], dport)
	b[36] = 0
	b[37] = uint8(r.TCPFlags)
	b[38] = r.Proto
	b[39] = r.TOS
	binary.BigEndian.PutUint16(b[40:], as16(r.SrcAS))
	binary.BigEndian.PutUint16(b[42:], as16(r.DstAS))
	b[44] = r.SrcMask
	b[45] = r.DstMask
	b[46], b[47] = 0, 0
}

func (e *Encoder) flush(emit func(Packet) error, sent *int) error {
	// sysUptime and unix_secs/unix_nsecs describe the same instant, to the
	// millisecond, so that boot time = export time - sysUptime is exact.
	now := time.UnixMilli(e.cfg.Clock().UnixMilli())
	h := Header{
		Count:        uint16(e.n),
		SysUptime:    uint32(now.UnixMilli() - e.initMs),
		ExportTime:   now,
		FlowSequence: e.seq,
		EngineType:   e.cfg.EngineType,
		EngineID:     e.cfg.EngineID,
	}
	if e.cfg.SamplingInterval > 1 {
		h.SamplingMode = SamplingDeterministic
		if e.cfg.SamplingRandom {
			h.SamplingMode = SamplingRandom
		}
		h.SamplingInterval = uint16(min(e.cfg.SamplingInterval, MaxSamplingInterval))
	}
	b := e.buf[:HeaderLen+e.n*RecordLen]
	putHeader(b, h)
	n := e.n
	// flow_sequence counts flows sent, delivered or not.
	e.seq += uint32(n)
	e.n = 0
	if err := emit(Packet{Bytes: b, Records: n, Sequence: h.FlowSequence}); err != nil {
		return fmt.Errorf("netflow5 encoder: emit packet of %d records: %w", n, err)
	}
	*sent += n
	return nil
}

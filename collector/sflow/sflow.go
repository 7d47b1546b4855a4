// SPDX-License-Identifier: Apache-2.0

// Package sflow decodes sFlow version 5 datagrams (sFlow.org, "sFlow
// Version 5", July 2004) for kflow's collector: flow samples, compact and
// expanded, become flow records, and generic interface counters are kept
// as what the agent says about its interfaces.
//
// Each flow sample describes one packet, chosen 1 in N by the agent. Its
// record counts that packet once (Packets 1) with its IP length (Octets:
// the IPv4 total length, or the IPv6 payload length plus 40, the
// convention of every kflow record) and carries N in SamplingInterval;
// the collector multiplies both counters by N, as it does for a sampled
// NetFlow or IPFIX record. goflow2 and pmacct's sfacctd count the
// sample's frame length instead (Ethernet header and FCS included), so
// their byte counts of the same samples are larger by at least 18 octets
// a packet.
//
// The decoder trusts nothing: every length is checked against what is
// left of the datagram, loops are bounded by the datagram's size, and
// records and samples of formats it does not know are skipped by their
// length and counted.
package sflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// Version is the sFlow datagram version decoded.
const Version = 5

// Port is the sFlow collector port (IANA).
const Port = 6343

// Sample formats (enterprise 0).
const (
	formatFlowSample             = 1
	formatCounterSample          = 2
	formatFlowSampleExpanded     = 3
	formatCounterSampleExpanded  = 4
	recordRawHeader              = 1
	recordSampledIPv4            = 3
	recordSampledIPv6            = 4
	recordExtendedSwitch         = 1001
	recordExtendedRouter         = 1002
	recordExtendedGateway        = 1003
	counterGenericInterface      = 1
	genericInterfaceCountersSize = 88
)

// unknownInterface is the interface value of a packet that entered or left
// through no (or an internal) interface.
const unknownInterface = 0x3fffffff

// Interface value formats (the two top bits of a compact value).
const (
	InterfaceIndex     = 0 // an ifIndex
	InterfaceDiscarded = 1 // output only: the packet was dropped, value is the reason
	InterfaceMultiple  = 2 // output only: sent to several interfaces, value is their number or 0
)

// Datagram is one decoded sFlow datagram. Decode reuses its slices.
type Datagram struct {
	// Agent is the agent address of the header; invalid when the agent
	// sends the "unknown" address type.
	Agent    netip.Addr
	SubAgent uint32
	Sequence uint32
	Uptime   time.Duration
	// Samples is the number of samples the header announces.
	Samples uint32
	// HeaderRead is set once the header is read whole: Agent, SubAgent
	// and Sequence are the datagram's even when Decode fails later.
	HeaderRead bool

	// Records holds one flow record per flow sample whose packet is IPv4
	// or IPv6, with Exporter set to Agent, ObservationDomain to SubAgent,
	// Packets 1 and Octets the packet's IP length, not yet scaled by
	// SamplingInterval.
	Records []flow.Record
	// Flows describes every flow sample, with or without a record.
	Flows []FlowSample
	// Counters holds the generic interface counter records, and
	// CounterSamples counts the counter samples, compact and expanded.
	Counters       []InterfaceCounters
	CounterSamples int
	// NotIP counts flow samples whose packet is neither IPv4 nor IPv6, or
	// whose IP header is cut short: they make no record.
	NotIP int
	// SkippedSamples and SkippedRecords count samples and records of
	// formats the decoder does not read (other enterprises, other
	// counter blocks), skipped by their length.
	SkippedSamples int
	SkippedRecords int
}

// FlowSample is the header of a flow sample.
type FlowSample struct {
	Expanded     bool
	Sequence     uint32
	SourceType   uint32 // 0 ifIndex, 1 VLAN, 2 physical entity, ...
	SourceIndex  uint32
	SamplingRate uint32 // 1 in N packets
	SamplePool   uint32 // packets that could have been sampled
	Drops        uint32 // samples the agent lost for lack of resources
	InputFormat  uint32
	Input        uint32
	OutputFormat uint32
	Output       uint32
	// Record is the index of the sample's record in Datagram.Records, or
	// -1 when the packet made none.
	Record int
}

// InterfaceCounters is a generic interface counters record (counter
// format 1), with the counter sample's source.
type InterfaceCounters struct {
	SourceType, SourceIndex uint32
	Sequence                uint32
	IfIndex                 uint32
	IfType                  uint32
	IfSpeed                 uint64
	IfDirection             uint32 // 0 unknown, 1 full duplex, 2 half, 3 in, 4 out
	IfStatus                uint32 // bit 0 admin up, bit 1 operationally up
	InOctets                uint64
	InUcastPkts             uint32
	InMulticastPkts         uint32
	InBroadcastPkts         uint32
	InDiscards              uint32
	InErrors                uint32
	InUnknownProtos         uint32
	OutOctets               uint64
	OutUcastPkts            uint32
	OutMulticastPkts        uint32
	OutBroadcastPkts        uint32
	OutDiscards             uint32
	OutErrors               uint32
	PromiscuousMode         uint32
}

// IsSFlow reports whether b starts like an sFlow datagram of any version
// (a 32-bit version whose top half is zero, unlike NetFlow's and IPFIX's
// 16-bit versions): the collector's per-packet detection.
func IsSFlow(b []byte) bool {
	return len(b) >= 4 && b[0] == 0 && b[1] == 0 && (b[2] != 0 || b[3] != 0)
}

func (d *Datagram) reset() {
	*d = Datagram{Records: d.Records[:0], Flows: d.Flows[:0], Counters: d.Counters[:0]}
}

// reader reads XDR (big-endian, 4-octet aligned) values from a datagram,
// remembering the first error. Every read checks the length left.
type reader struct {
	b   []byte
	off int // offset of b[0] in the datagram
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = &offsetError{off: r.off, err: err}
	}
	r.b = nil
}

type offsetError struct {
	off int
	err error
}

func (e *offsetError) Error() string { return e.err.Error() }
func (e *offsetError) Unwrap() error { return e.err }

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.fail(fmt.Errorf("%d octets left for a 4-octet field: %w", len(r.b), wire.ErrTruncated))
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b, r.off = r.b[4:], r.off+4
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail(fmt.Errorf("%d octets left for an 8-octet field: %w", len(r.b), wire.ErrTruncated))
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b, r.off = r.b[8:], r.off+8
	return v
}

// bytes returns the next n octets, then skips the padding to a multiple
// of 4.
func (r *reader) bytes(n uint32, what string) []byte {
	padded := (uint64(n) + 3) &^ 3
	if uint64(len(r.b)) < padded {
		r.fail(fmt.Errorf("%s of %d octets, %d left: %w", what, n, len(r.b), wire.ErrLength))
		return nil
	}
	v := r.b[:n]
	r.b, r.off = r.b[padded:], r.off+int(padded)
	return v
}

// sub returns a reader over the next n octets (an element of length n)
// and skips them.
func (r *reader) sub(n uint32, what string) reader {
	start := r.off
	b := r.bytes(n, what)
	return reader{b: b, off: start}
}

// addr reads an sFlow address: a type (0 unknown, 1 IPv4, 2 IPv6) and
// the address.
func (r *reader) addr() netip.Addr {
	switch t := r.u32(); t {
	case 0:
		return netip.Addr{}
	case 1:
		if b := r.bytes(4, "IPv4 address"); b != nil {
			return netip.AddrFrom4([4]byte(b))
		}
	case 2:
		if b := r.bytes(16, "IPv6 address"); b != nil {
			return netip.AddrFrom16([16]byte(b))
		}
	default:
		r.fail(fmt.Errorf("address type %d: %w", t, errBadValue))
	}
	return netip.Addr{}
}

// errBadValue is wrapped by errors for values outside their range.
var errBadValue = errors.New("bad value")

// Decode decodes the datagram b, received at now, into d. Records take
// now as their start and end: a sample has no time of its own. On error
// d holds what was decoded before the problem: the samples before it are
// whole and can be stored.
func Decode(d *Datagram, b []byte, now time.Time) error {
	d.reset()
	r := reader{b: b}
	v := r.u32()
	if r.err == nil && v != Version {
		return &wire.DecodeError{Format: "sflow", Version: uint16(min(v, 0xffff)),
			Err: fmt.Errorf("version %d (kflow reads sFlow version 5): %w", v, wire.ErrVersion)}
	}
	d.Agent = r.addr()
	d.SubAgent = r.u32()
	d.Sequence = r.u32()
	d.Uptime = time.Duration(r.u32()) * time.Millisecond
	d.Samples = r.u32()
	d.HeaderRead = r.err == nil
	for i := uint32(0); i < d.Samples && r.err == nil; i++ {
		format := r.u32()
		s := r.sub(r.u32(), "sample")
		if r.err != nil {
			break
		}
		switch format {
		case formatFlowSample, formatFlowSampleExpanded:
			d.flowSample(&s, format == formatFlowSampleExpanded, now)
		case formatCounterSample, formatCounterSampleExpanded:
			d.CounterSamples++
			d.counterSample(&s, format == formatCounterSampleExpanded)
		default:
			d.SkippedSamples++
		}
		if s.err != nil {
			r.err = s.err
		}
	}
	if r.err != nil {
		return decodeError(d, r.err)
	}
	return nil
}

func decodeError(d *Datagram, err error) error {
	de := &wire.DecodeError{Format: "sflow", Version: Version, Domain: d.SubAgent, Err: err}
	var oe *offsetError
	if errors.As(err, &oe) {
		de.Offset = oe.off
	}
	return de
}

func (d *Datagram) flowSample(s *reader, expanded bool, now time.Time) {
	fs := FlowSample{Expanded: expanded, Record: -1}
	fs.Sequence = s.u32()
	if expanded {
		fs.SourceType = s.u32()
		fs.SourceIndex = s.u32()
	} else {
		id := s.u32()
		fs.SourceType, fs.SourceIndex = id>>24, id&0xffffff
	}
	fs.SamplingRate = s.u32()
	fs.SamplePool = s.u32()
	fs.Drops = s.u32()
	if expanded {
		fs.InputFormat, fs.Input = s.u32(), s.u32()
		fs.OutputFormat, fs.Output = s.u32(), s.u32()
	} else {
		in, out := s.u32(), s.u32()
		fs.InputFormat, fs.Input = in>>30, in&unknownInterface
		fs.OutputFormat, fs.Output = out>>30, out&unknownInterface
	}
	n := s.u32()
	if s.err != nil {
		return
	}
	var p packet
	have := false
	for i := uint32(0); i < n && s.err == nil; i++ {
		format := s.u32()
		rec := s.sub(s.u32(), "flow record")
		if s.err != nil {
			return
		}
		switch format {
		case recordRawHeader:
			proto := rec.u32()
			frameLen := rec.u32()
			stripped := rec.u32()
			h := rec.bytes(rec.u32(), "sampled header")
			if rec.err == nil && !have {
				have = p.parseHeader(proto, h, frameLen, stripped)
			}
		case recordSampledIPv4, recordSampledIPv6:
			if !have {
				have = p.parseSampledIP(&rec, format == recordSampledIPv6)
			}
		case recordExtendedSwitch:
			p.srcVLAN = rec.u32()
			rec.u32() // source priority
			p.dstVLAN = rec.u32()
		case recordExtendedRouter:
			p.nextHop = rec.addr()
			p.srcMask, p.dstMask = rec.u32(), rec.u32()
		case recordExtendedGateway:
			p.gateway(&rec)
		default:
			d.SkippedRecords++
		}
		if rec.err != nil {
			s.err = rec.err
		}
	}
	if s.err != nil {
		return
	}
	if !have {
		d.NotIP++
	} else {
		r := p.record(now)
		r.Exporter = d.Agent
		r.ObservationDomain = d.SubAgent
		r.SamplingInterval = fs.SamplingRate
		if fs.InputFormat == InterfaceIndex && fs.Input != unknownInterface {
			r.InIf = fs.Input
		}
		if fs.OutputFormat == InterfaceIndex && fs.Output != unknownInterface {
			r.OutIf = fs.Output
		}
		fs.Record = len(d.Records)
		d.Records = append(d.Records, r)
	}
	d.Flows = append(d.Flows, fs)
}

func (d *Datagram) counterSample(s *reader, expanded bool) {
	var srcType, srcIndex uint32
	seq := s.u32()
	if expanded {
		srcType, srcIndex = s.u32(), s.u32()
	} else {
		id := s.u32()
		srcType, srcIndex = id>>24, id&0xffffff
	}
	n := s.u32()
	for i := uint32(0); i < n && s.err == nil; i++ {
		format := s.u32()
		rec := s.sub(s.u32(), "counter record")
		if s.err != nil {
			return
		}
		if format != counterGenericInterface {
			d.SkippedRecords++
			continue
		}
		if len(rec.b) < genericInterfaceCountersSize {
			s.fail(fmt.Errorf("generic interface counters of %d octets, want %d: %w", len(rec.b), genericInterfaceCountersSize, wire.ErrLength))
			return
		}
		d.Counters = append(d.Counters, InterfaceCounters{
			SourceType: srcType, SourceIndex: srcIndex, Sequence: seq,
			IfIndex: rec.u32(), IfType: rec.u32(), IfSpeed: rec.u64(), IfDirection: rec.u32(), IfStatus: rec.u32(),
			InOctets: rec.u64(), InUcastPkts: rec.u32(), InMulticastPkts: rec.u32(), InBroadcastPkts: rec.u32(),
			InDiscards: rec.u32(), InErrors: rec.u32(), InUnknownProtos: rec.u32(),
			OutOctets: rec.u64(), OutUcastPkts: rec.u32(), OutMulticastPkts: rec.u32(), OutBroadcastPkts: rec.u32(),
			OutDiscards: rec.u32(), OutErrors: rec.u32(), PromiscuousMode: rec.u32(),
		})
	}
}

var errASPath = fmt.Errorf("as path longer than its record: %w", wire.ErrLength)

// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// ExporterStats is an exporter statistics options record: RFC 7011 section
// 4.3 counters plus the ignored counters kflow uses to account for every
// packet it could not put in a flow.
type ExporterStats struct {
	Domain         uint32
	Messages       uint64    // exportedMessageTotalCount (IE 41)
	Records        uint64    // exportedFlowRecordTotalCount (IE 42)
	Octets         uint64    // exportedOctetTotalCount (IE 40)
	IgnoredPackets uint64    // ignoredPacketTotalCount (IE 164)
	IgnoredOctets  uint64    // ignoredOctetTotalCount (IE 165)
	SystemInit     time.Time // systemInitTimeMilliseconds (IE 160); zero when absent
}

// Interface maps an interface index to its name (options record with scope
// ingressInterface (IE 10) and interfaceName (IE 82)).
type Interface struct {
	Domain uint32 // set by decoders; ignored by encoders
	Index  uint32
	Name   string
}

// FilterCount is a capture filter statistics options record: the packets
// and octets a filter left out on one interface in one direction, totals
// since the exporter's counters started (kflow's IPFIX template: scope
// ingressInterface (10) and egressInterface (14), one of them zero, then
// ignoredPacketTotalCount (164) and ignoredOctetTotalCount (165);
// NetFlow v9: scope Interface, DIRECTION (61), 164, 165).
type FilterCount struct {
	Domain          uint32 // set by decoders; ignored by encoders
	Ifindex         uint32
	Direction       flow.Direction
	Packets, Octets uint64
}

// Sampling is a sampling options record.
type Sampling struct {
	Domain    uint32
	Interval  uint32 // one packet out of Interval is sampled
	Algorithm uint8  // SamplingDeterministic, SamplingRandom; 0 unknown
	// SamplerID is the record's samplerId (IE 48, NetFlow v9's
	// FLOW_SAMPLER_ID) or selectorId (IE 302) scope, when it has one:
	// data records naming it are scaled by this Interval.
	SamplerID    uint64
	HasSamplerID bool
}

// Sampling algorithms, numbered as NetFlow v9's SAMPLING_ALGORITHM, IPFIX's
// samplingAlgorithm (35) and samplerMode (49), and the mode of the NetFlow
// v5 header.
const (
	SamplingDeterministic uint8 = 1 // every Nth packet (systematic count-based)
	SamplingRandom        uint8 = 2 // each packet with probability 1/N
)

// PSAMP selectorAlgorithm (IE 304) values (RFC 5477, IANA registry).
const (
	SelectorCountBased           uint16 = 1 // systematic count-based sampling
	SelectorRandomNofN           uint16 = 3 // random n-out-of-N sampling
	SelectorUniformProbabilistic uint16 = 4 // uniform probabilistic sampling
)

// Context is what a data set needs from its message header.
type Context struct {
	Domain   uint32
	ExportMs int64 // export time, unix milliseconds
	UptimeMs int64 // v9/v5 header sysUptime in ms; -1 when the format has none
}

// MissingSet is a data set whose template the session does not know. Body
// aliases the decoded message: copy it to hold the set beyond the next
// decode into the same buffer.
type MissingSet struct {
	Context
	TemplateID uint16
	Offset     int // offset of the set body in the message
	Body       []byte
}

// Data is what a decoded message carries besides its header. Decoders
// append to it; Reset empties it and keeps the capacity.
type Data struct {
	Records    []flow.Record
	Stats      []ExporterStats
	Interfaces []Interface
	Sampling   []Sampling
	Filtered   []FilterCount
	Missing    []MissingSet // data sets that arrived before their template
	Templates  int          // template and options template records learned
	Withdrawn  int          // templates withdrawn
	// DataRecords counts the data records decoded, flow and options, known
	// to the record model or not: what an IPFIX sequence number counts.
	DataRecords int
	// Reversed counts the Records made from the reverse elements of
	// biflow records (RFC 5103): a biflow record gives two Records.
	Reversed int
}

// Reset empties d, keeping allocated capacity.
func (d *Data) Reset() {
	d.Records = d.Records[:0]
	d.Stats = d.Stats[:0]
	d.Interfaces = d.Interfaces[:0]
	d.Sampling = d.Sampling[:0]
	d.Filtered = d.Filtered[:0]
	d.Missing = d.Missing[:0]
	d.Templates = 0
	d.Withdrawn = 0
	d.DataRecords = 0
	d.Reversed = 0
}

// DecodeData decodes the data set id of ctx.Domain with its template,
// appending to out, or lists the set in out.Missing when the session does
// not know the template (yet). off is the body's offset in the message.
func (s *Templates) DecodeData(out *Data, ctx *Context, id uint16, body []byte, off int) error {
	t := s.Get(ctx.Domain, id)
	if t == nil {
		out.Missing = append(out.Missing, MissingSet{Context: *ctx, TemplateID: id, Offset: off, Body: body})
		return nil
	}
	return s.DecodeSet(out, ctx, t, body, off)
}

// DecodeHeld decodes a set that DecodeData listed as missing its template,
// appending to out. It returns ErrMissingTemplate when the template is
// still unknown.
func (s *Templates) DecodeHeld(out *Data, m *MissingSet) error {
	t := s.Get(m.Domain, m.TemplateID)
	if t == nil {
		return ErrMissingTemplate
	}
	return s.DecodeSet(out, &m.Context, t, m.Body, m.Offset)
}

// DecodeSet decodes the records of one data set body with template t,
// appending flow records or options data to out. off is the body's offset
// in the message, for errors. Padding shorter than the template's minimum
// record length at the end of the set is ignored (RFC 7011 section 3.3.1,
// RFC 3954 section 5.3).
func (s *Templates) DecodeSet(out *Data, ctx *Context, t *Template, body []byte, off int) error {
	s.pending = s.pending[:0]
	p := 0
	if pl := t.decodePlan(); pl != nil && pl.recLen >= t.MinLen {
		// Fixed layout: every record is pl.recLen octets.
		for len(body)-p >= pl.recLen {
			out.Records = append(out.Records, flow.Record{})
			rec := &out.Records[len(out.Records)-1]
			var rs recState
			pl.run(&rs, rec, body[p:])
			s.finishRecord(out, rec, ctx, &rs)
			p += pl.recLen
			out.DataRecords++
		}
		s.resolvePending(out, ctx)
		return nil
	}
	for len(body)-p >= t.MinLen {
		n, err := s.decodeRecord(out, ctx, t, body[p:], off+p)
		if err != nil {
			s.resolvePending(out, ctx)
			return err
		}
		p += n
		out.DataRecords++
	}
	s.resolvePending(out, ctx)
	return nil
}

// decodeRecord decodes one record from the start of b and returns its
// length. n > 0 on success because MinLen >= 1.
func (s *Templates) decodeRecord(out *Data, ctx *Context, t *Template, b []byte, off int) (int, error) {
	var rs recState
	var os optState
	var rec *flow.Record
	if s.rev.used {
		s.rev = reverseScratch{} // left by a record that failed to decode
	}
	if t.IsOptions() {
		os.domain = ctx.Domain
	} else {
		out.Records = append(out.Records, flow.Record{})
		rec = &out.Records[len(out.Records)-1]
	}
	p := 0
	for i := range t.Fields {
		f := &t.Fields[i]
		n := int(f.Length)
		if f.Length == VarLen {
			// RFC 7011 section 7: one length octet, or 255 followed by a
			// two-octet length.
			if p >= len(b) {
				return 0, s.dropLast(out, rec, fmt.Errorf("variable-length field %d at offset %d: %w", i, off+p, ErrTruncated))
			}
			n = int(b[p])
			p++
			if n == 255 {
				if p+2 > len(b) {
					return 0, s.dropLast(out, rec, fmt.Errorf("variable-length field %d at offset %d: %w", i, off+p, ErrTruncated))
				}
				n = int(binary.BigEndian.Uint16(b[p:]))
				p += 2
			}
		}
		if p+n > len(b) {
			return 0, s.dropLast(out, rec, fmt.Errorf("field %d (ie %d, %d octets) at offset %d past end of set: %w", i, f.ID, n, off+p, ErrTruncated))
		}
		v := b[p : p+n]
		p += n
		if f.Enterprise != 0 {
			if f.Enterprise == ReversePEN && rec != nil {
				s.applyReverse(f.ID, v) // a biflow's responder
			}
			continue // other enterprise elements: skipped, never fatal
		}
		if rec == nil {
			os.apply(f.ID, v, i < t.ScopeCount)
		} else {
			rs.apply(rec, f.ID, v)
		}
	}
	if rec == nil {
		s.finishOptions(out, &os)
	} else {
		s.finishRecord(out, rec, ctx, &rs)
	}
	return p, nil
}

func (s *Templates) dropLast(out *Data, rec *flow.Record, err error) error {
	if rec != nil {
		out.Records = out.Records[:len(out.Records)-1]
	}
	return err
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// DefaultMTU is the default maximum message size: the UDP payload that
// fits a 1500-octet path with room for tunnels.
const DefaultMTU = 1400

// Message size bounds accepted by NewEncoder.
const (
	MinMTU = 512
	MaxMTU = 65535
)

// Config configures an Encoder. Zero fields take the defaults.
type Config struct {
	ObservationDomain uint32
	// MTU is the maximum message size in octets (UDP payload); default
	// DefaultMTU.
	MTU int
	// Stream selects TCP semantics: templates once per connection (send
	// them again after Reset), options data every TemplateRefresh.
	// Otherwise (UDP) templates and options data are refreshed by time and
	// by message count.
	Stream bool
	// TemplateRefresh is the refresh interval; default 600 s, negative
	// disables refresh by time.
	TemplateRefresh time.Duration
	// TemplateRefreshMessages refreshes UDP templates after that many
	// messages; default 1000, negative disables.
	TemplateRefreshMessages int
	// SamplingInterval > 1 announces 1-in-N packet sampling in a sampling
	// options record.
	SamplingInterval uint32
	// SystemInit is when the exporting process started
	// (systemInitTimeMilliseconds); default Clock() at NewEncoder.
	SystemInit time.Time
	// Clock returns the export time; default time.Now.
	Clock func() time.Time
	// SequenceAllRecords makes the header's sequence number count every
	// data record, options data records included, as RFC 7011 section 3.1
	// words it. By default it counts flow data records only: nfdump (and
	// collectors built like it) add up flow records alone and would report
	// a sequence failure after every message carrying options records.
	SequenceAllRecords bool
}

// Packet is one encoded message handed to the transport.
type Packet struct {
	// Bytes is the message. It is reused once the emit function returns.
	Bytes []byte
	// Records is the number of flow records in the message.
	Records int
	// Templates reports that the message carries template sets.
	Templates bool
	// Sequence is the message header's sequence number.
	Sequence uint32
}

// Encoder packs flow records into IPFIX messages. It is not safe for
// concurrent use.
type Encoder struct {
	cfg     Config
	b       *wire.Builder
	refresh wire.Refresh
	v4, v6  tmpl
	stats   tmpl
	ifaces  tmpl
	samp    tmpl

	initMs         int64
	seq            uint32
	messages       uint64 // messages sent
	records        uint64 // flow records sent
	ignoredPackets uint64
	ignoredOctets  uint64
	interfaces     []wire.Interface

	open            bool // a message is started
	now             time.Time
	msgTpl, msgOpts bool
}

// NewEncoder returns an encoder for one observation domain.
func NewEncoder(cfg Config) (*Encoder, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("ipfix encoder: mtu %d outside [%d, %d]: %w", cfg.MTU, MinMTU, MaxMTU, wire.ErrMTU)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.TemplateRefresh == 0 {
		cfg.TemplateRefresh = wire.DefaultTemplateRefresh
	}
	if cfg.TemplateRefreshMessages == 0 {
		cfg.TemplateRefreshMessages = wire.DefaultTemplateRefreshMessages
	}
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = cfg.Clock()
	}
	e := &Encoder{
		cfg:    cfg,
		b:      wire.NewBuilder(cfg.MTU, HeaderLen, 0),
		v4:     newTmpl(TemplateIPv4, 0, flowFields(false)),
		v6:     newTmpl(TemplateIPv6, 0, flowFields(true)),
		stats:  newTmpl(TemplateStats, 1, statsFields()),
		ifaces: newTmpl(TemplateInterfaces, 1, interfaceFields()),
		samp:   newTmpl(TemplateSampling, 1, samplingFields()),
		initMs: cfg.SystemInit.UnixMilli(),
		refresh: wire.Refresh{
			Interval: cfg.TemplateRefresh,
			Messages: cfg.TemplateRefreshMessages,
			Stream:   cfg.Stream,
		},
	}
	return e, nil
}

// ForceTemplates makes the next message carry all templates and options
// data, e.g. when the transport learns the collector restarted.
func (e *Encoder) ForceTemplates() { e.refresh.Force() }

// Reset starts a new transport session (a TCP reconnect): sequence numbers
// restart at zero and the next message carries the templates.
func (e *Encoder) Reset() {
	e.seq = 0
	e.refresh.Force()
}

// SetInterfaces sets the interface names announced in options records; the
// next message carries them. Names longer than 255 octets are truncated.
func (e *Encoder) SetInterfaces(ifs []wire.Interface) {
	e.interfaces = append(e.interfaces[:0], ifs...)
	for i := range e.interfaces {
		if len(e.interfaces[i].Name) > 255 {
			e.interfaces[i].Name = e.interfaces[i].Name[:255]
		}
	}
	e.refresh.Force()
}

// SetIgnored sets the totals of packets and octets the exporter observed
// but could not account for in a flow record, sent in the statistics
// options record (IEs 164, 165).
func (e *Encoder) SetIgnored(packets, octets uint64) {
	e.ignoredPackets, e.ignoredOctets = packets, octets
}

// Counters returns the messages and flow records sent so far.
func (e *Encoder) Counters() (messages, records uint64) { return e.messages, e.records }

// Encode packs recs into as few messages as the MTU allows and hands each
// to emit; the last, partly filled message is emitted before Encode
// returns, so nothing stays buffered. Templates and options data go first
// in a message when due; with no records Encode emits a message only when
// they are due. Records whose source address is not IPv6 use the IPv4
// template. It returns the number of records in messages emit accepted;
// an emit error stops encoding and is returned wrapped.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	sent := 0
	for len(recs) > 0 {
		// Records of one address family in a row share a data set: take
		// as many of them as the message has room for at once.
		v6 := recs[0].Src.Is6()
		t := &e.v4
		if v6 {
			t = &e.v6
		}
		run, most := 1, e.cfg.MTU/t.size
		for run < len(recs) && run < most && recs[run].Src.Is6() == v6 {
			run++
		}
		buf, n, err := e.reserveRun(t, run, emit, &sent)
		if err != nil {
			return sent, err
		}
		if v6 {
			for k := range n {
				putFlow6(buf[k*flow6Len:], &recs[k])
			}
		} else {
			for k := range n {
				putFlow4(buf[k*flow4Len:], &recs[k])
			}
		}
		e.b.DataRecords += n
		e.b.FlowRecords += n
		recs = recs[n:]
	}
	if !e.open {
		if err := e.begin(emit, &sent); err != nil {
			return sent, err
		}
	}
	if e.b.Empty() {
		e.open = false
		return sent, nil
	}
	return sent, e.flush(emit, &sent)
}

// begin starts a message and adds templates and options data when due.
func (e *Encoder) begin(emit func(Packet) error, sent *int) error {
	e.b.Reset()
	e.open = true
	e.now = e.cfg.Clock()
	e.msgTpl, e.msgOpts = false, false
	tpl, opts := e.refresh.Due(e.now)
	if tpl {
		if err := e.putTemplates(emit, sent); err != nil {
			return err
		}
	}
	if opts {
		return e.putOptions(emit, sent)
	}
	return nil
}

// reserveRun returns room for the first n (at least one) of want
// records of template t, starting messages and flushing full ones as
// needed.
func (e *Encoder) reserveRun(t *tmpl, want int, emit func(Packet) error, sent *int) ([]byte, int, error) {
	if !e.open {
		if err := e.begin(emit, sent); err != nil {
			return nil, 0, err
		}
	}
	n := e.b.Room(t.id, t.size, want)
	if n == 0 {
		if err := e.flush(emit, sent); err != nil {
			return nil, 0, err
		}
		if err := e.begin(emit, sent); err != nil {
			return nil, 0, err
		}
		if n = e.b.Room(t.id, t.size, want); n == 0 {
			return nil, 0, fmt.Errorf("ipfix encoder: %d-octet record in a %d-octet message: %w", t.size, e.cfg.MTU, wire.ErrMTU)
		}
	}
	return e.b.Reserve(t.id, n*t.size), n, nil
}

// reserveMeta is reserve for templates and options data: it continues the
// refresh in a new message without checking again what is due.
func (e *Encoder) reserveMeta(id uint16, n int, emit func(Packet) error, sent *int) ([]byte, error) {
	if buf := e.b.Reserve(id, n); buf != nil {
		return buf, nil
	}
	if err := e.flush(emit, sent); err != nil {
		return nil, err
	}
	e.b.Reset()
	e.open = true
	e.now = e.cfg.Clock()
	e.msgTpl, e.msgOpts = false, false
	if buf := e.b.Reserve(id, n); buf != nil {
		return buf, nil
	}
	return nil, fmt.Errorf("ipfix encoder: %d-octet record in a %d-octet message: %w", n, e.cfg.MTU, wire.ErrMTU)
}

func (e *Encoder) optionTemplates() []*tmpl {
	ts := []*tmpl{&e.stats, &e.ifaces}
	if e.cfg.SamplingInterval > 1 {
		ts = append(ts, &e.samp)
	}
	return ts
}

func (e *Encoder) putTemplates(emit func(Packet) error, sent *int) error {
	for _, t := range []*tmpl{&e.v4, &e.v6} {
		buf, err := e.reserveMeta(SetTemplate, t.recordLen(), emit, sent)
		if err != nil {
			return err
		}
		t.putRecord(buf)
		e.b.Templates++
		e.msgTpl = true
	}
	for _, t := range e.optionTemplates() {
		// One options template per set: some collectors read only the
		// first record of an Options Template Set.
		e.b.CloseSet()
		buf, err := e.reserveMeta(SetOptionsTemplate, t.recordLen(), emit, sent)
		if err != nil {
			return err
		}
		t.putRecord(buf)
		e.b.Templates++
		e.msgTpl = true
	}
	return nil
}

func (e *Encoder) putOptions(emit func(Packet) error, sent *int) error {
	buf, err := e.reserveMeta(TemplateStats, e.stats.size, emit, sent)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(buf[0:], e.cfg.ObservationDomain)
	binary.BigEndian.PutUint64(buf[4:], e.messages)
	binary.BigEndian.PutUint64(buf[12:], e.records)
	binary.BigEndian.PutUint64(buf[20:], uint64(e.initMs))
	binary.BigEndian.PutUint64(buf[28:], e.ignoredPackets)
	binary.BigEndian.PutUint64(buf[36:], e.ignoredOctets)
	e.b.DataRecords++
	e.msgOpts = true

	for _, ifc := range e.interfaces {
		n := len(ifc.Name)
		hdr := 1
		if n >= 255 {
			hdr = 3
		}
		buf, err := e.reserveMeta(TemplateInterfaces, 4+hdr+n, emit, sent)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(buf[0:], ifc.Index)
		if hdr == 1 {
			buf[4] = byte(n)
		} else {
			buf[4] = 255
			binary.BigEndian.PutUint16(buf[5:], uint16(n))
		}
		copy(buf[4+hdr:], ifc.Name)
		e.b.DataRecords++
		e.msgOpts = true
	}

	if e.cfg.SamplingInterval > 1 {
		buf, err := e.reserveMeta(TemplateSampling, e.samp.size, emit, sent)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(buf[0:], e.cfg.ObservationDomain)
		binary.BigEndian.PutUint32(buf[4:], e.cfg.SamplingInterval)
		buf[8] = 1 // deterministic (systematic count-based)
		binary.BigEndian.PutUint32(buf[9:], 1)
		binary.BigEndian.PutUint32(buf[13:], e.cfg.SamplingInterval-1)
		e.b.DataRecords++
		e.msgOpts = true
	}
	return nil
}

// flush completes the open message and emits it.
func (e *Encoder) flush(emit func(Packet) error, sent *int) error {
	msg := e.b.Finish()
	p := Packet{Bytes: msg, Records: e.b.FlowRecords, Templates: e.msgTpl, Sequence: e.seq}
	putHeader(msg, Header{Length: uint16(len(msg)), ExportTime: e.now, Sequence: e.seq, Domain: e.cfg.ObservationDomain})
	// The sequence number counts the data records sent before the message,
	// so it advances whether or not the transport delivers it.
	if e.cfg.SequenceAllRecords {
		e.seq += uint32(e.b.DataRecords)
	} else {
		e.seq += uint32(e.b.FlowRecords)
	}
	e.messages++
	e.records += uint64(e.b.FlowRecords)
	e.refresh.Sent(e.now, e.msgTpl, e.msgOpts)
	e.open = false
	if err := emit(p); err != nil {
		return fmt.Errorf("ipfix encoder: emit message of %d records: %w", p.Records, err)
	}
	*sent += p.Records
	return nil
}

// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// DefaultMTU is the default maximum packet size (UDP payload).
const DefaultMTU = 1400

// Packet size bounds accepted by NewEncoder.
const (
	MinMTU = 512
	MaxMTU = 65535
)

// Config configures an Encoder. Zero fields take the defaults.
type Config struct {
	SourceID uint32
	// MTU is the maximum packet size in octets; default DefaultMTU.
	MTU int
	// TemplateRefresh is the template refresh interval; default 600 s,
	// negative disables refresh by time.
	TemplateRefresh time.Duration
	// TemplateRefreshMessages refreshes templates after that many packets;
	// default 1000, negative disables.
	TemplateRefreshMessages int
	// SamplingInterval > 1 announces 1-in-N deterministic sampling in an
	// options record.
	SamplingInterval uint32
	// SystemInit is the instant sysUptime counts from; default Clock() at
	// NewEncoder.
	SystemInit time.Time
	// Clock returns the export time; default time.Now.
	Clock func() time.Time
}

// Packet is one encoded export packet handed to the transport.
type Packet struct {
	Bytes     []byte // reused once the emit function returns
	Records   int    // flow records in the packet
	Templates bool   // the packet carries template flowsets
	Sequence  uint32 // the header's sequence number
}

// Encoder packs flow records into NetFlow v9 export packets. It is not
// safe for concurrent use.
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
	records        uint64
	ignoredPackets uint64
	ignoredOctets  uint64
	interfaces     []wire.Interface

	open            bool
	now             time.Time
	msgTpl, msgOpts bool
}

// NewEncoder returns an encoder for one source id.
func NewEncoder(cfg Config) (*Encoder, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("netflow9 encoder: mtu %d outside [%d, %d]: %w", cfg.MTU, MinMTU, MaxMTU, wire.ErrMTU)
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
	return &Encoder{
		cfg:    cfg,
		b:      wire.NewBuilder(cfg.MTU, HeaderLen, 4),
		v4:     newTmpl(TemplateIPv4, 0, flowFields(false)),
		v6:     newTmpl(TemplateIPv6, 0, flowFields(true)),
		stats:  newTmpl(TemplateStats, 1, statsFields()),
		ifaces: newTmpl(TemplateInterfaces, 1, interfaceFields()),
		samp:   newTmpl(TemplateSampling, 1, samplingFields()),
		initMs: cfg.SystemInit.UnixMilli(),
		refresh: wire.Refresh{
			Interval: cfg.TemplateRefresh,
			Messages: cfg.TemplateRefreshMessages,
		},
	}, nil
}

// ForceTemplates makes the next packet carry all templates and options
// data.
func (e *Encoder) ForceTemplates() { e.refresh.Force() }

// SetInterfaces sets the interface names announced in options records
// (IF_NAME, truncated to IfNameLen octets); the next packet carries them.
func (e *Encoder) SetInterfaces(ifs []wire.Interface) {
	e.interfaces = append(e.interfaces[:0], ifs...)
	e.refresh.Force()
}

// SetIgnored sets the totals of packets and octets observed but not
// accounted for in a flow record.
func (e *Encoder) SetIgnored(packets, octets uint64) {
	e.ignoredPackets, e.ignoredOctets = packets, octets
}

// Counters returns the packets and flow records sent so far.
func (e *Encoder) Counters() (packets, records uint64) { return uint64(e.seq), e.records }

// Encode packs recs into as few packets as the MTU allows and hands each to
// emit; nothing stays buffered when it returns. With no records it emits a
// packet only when templates are due. Records whose source address is not
// IPv6 use the IPv4 template. It returns the number of records in packets
// emit accepted; an emit error stops encoding and is returned wrapped.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	sent := 0
	for len(recs) > 0 {
		// Records of one address family in a row share a data set: take
		// as many of them as the packet has room for at once.
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
				putFlow6(buf[k*flow6Len:], &recs[k], e.initMs)
			}
		} else {
			for k := range n {
				putFlow4(buf[k*flow4Len:], &recs[k], e.initMs)
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

func (e *Encoder) start() {
	e.b.Reset()
	e.open = true
	// The header carries unix_secs only: use the export time truncated to
	// the second for both unix_secs and sysUptime, so that collectors
	// computing boot time as unix_secs - sysUptime get it to the ms.
	e.now = e.cfg.Clock().Truncate(time.Second)
	e.msgTpl, e.msgOpts = false, false
}

func (e *Encoder) begin(emit func(Packet) error, sent *int) error {
	e.start()
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
			return nil, 0, fmt.Errorf("netflow9 encoder: %d-octet record in a %d-octet packet: %w", t.size, e.cfg.MTU, wire.ErrMTU)
		}
	}
	return e.b.Reserve(t.id, n*t.size), n, nil
}

func (e *Encoder) reserveMeta(id uint16, n int, emit func(Packet) error, sent *int) ([]byte, error) {
	if buf := e.b.Reserve(id, n); buf != nil {
		return buf, nil
	}
	if err := e.flush(emit, sent); err != nil {
		return nil, err
	}
	e.start()
	if buf := e.b.Reserve(id, n); buf != nil {
		return buf, nil
	}
	return nil, fmt.Errorf("netflow9 encoder: %d-octet record in a %d-octet packet: %w", n, e.cfg.MTU, wire.ErrMTU)
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
	opts := []*tmpl{&e.stats, &e.ifaces}
	if e.cfg.SamplingInterval > 1 {
		opts = append(opts, &e.samp)
	}
	for _, t := range opts {
		// RFC 3954 section 6.1 shows one options template per FlowSet;
		// some collectors read no more.
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
	binary.BigEndian.PutUint32(buf[0:], e.cfg.SourceID)
	binary.BigEndian.PutUint64(buf[4:], uint64(e.seq))
	binary.BigEndian.PutUint64(buf[12:], e.records)
	binary.BigEndian.PutUint64(buf[20:], e.ignoredPackets)
	binary.BigEndian.PutUint64(buf[28:], e.ignoredOctets)
	e.b.DataRecords++
	e.msgOpts = true

	for _, ifc := range e.interfaces {
		buf, err := e.reserveMeta(TemplateInterfaces, e.ifaces.size, emit, sent)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(buf[0:], ifc.Index)
		copy(buf[4:4+IfNameLen], ifc.Name)
		e.b.DataRecords++
		e.msgOpts = true
	}

	if e.cfg.SamplingInterval > 1 {
		buf, err := e.reserveMeta(TemplateSampling, e.samp.size, emit, sent)
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint32(buf[0:], e.cfg.SourceID)
		binary.BigEndian.PutUint32(buf[4:], e.cfg.SamplingInterval)
		buf[8] = 1 // SAMPLING_ALGORITHM: deterministic
		e.b.DataRecords++
		e.msgOpts = true
	}
	return nil
}

func (e *Encoder) flush(emit func(Packet) error, sent *int) error {
	msg := e.b.Finish()
	p := Packet{Bytes: msg, Records: e.b.FlowRecords, Templates: e.msgTpl, Sequence: e.seq}
	putHeader(msg, Header{
		Count:      uint16(e.b.Templates + e.b.DataRecords),
		SysUptime:  uint32(e.now.UnixMilli() - e.initMs),
		ExportTime: e.now,
		Sequence:   e.seq,
		SourceID:   e.cfg.SourceID,
	})
	// RFC 3954: the sequence number counts export packets.
	e.seq++
	e.records += uint64(e.b.FlowRecords)
	e.refresh.Sent(e.now, e.msgTpl, e.msgOpts)
	e.open = false
	if err := emit(p); err != nil {
		return fmt.Errorf("netflow9 encoder: emit packet of %d records: %w", p.Records, err)
	}
	*sent += p.Records
	return nil
}

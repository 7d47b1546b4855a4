// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Message size bounds of the IPFIX and NetFlow v9 encoders.
const (
	// DefaultMTU is the UDP payload that fits a 1500-octet path with room
	// for tunnels.
	DefaultMTU = 1400
	MinMTU     = 512
	MaxMTU     = 65535
)

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

// ExportTemplate is a template an encoder sends.
type ExportTemplate struct {
	ID     uint16
	Scope  int // number of leading scope fields; > 0 for options templates
	Fields []Field
	Size   int // record size, variable-length fields not counted
}

// NewExportTemplate returns the template and computes its record size.
func NewExportTemplate(id uint16, scope int, fields []Field) ExportTemplate {
	t := ExportTemplate{ID: id, Scope: scope, Fields: fields}
	for _, f := range fields {
		if f.Length != VarLen {
			t.Size += int(f.Length)
		}
	}
	return t
}

// EncoderConfig is the part of an encoder's configuration the IPFIX and
// NetFlow v9 encoders share. See their Config types for the meaning.
type EncoderConfig struct {
	MTU                     int
	Stream                  bool
	TemplateRefresh         time.Duration
	TemplateRefreshMessages int
	SystemInit              time.Time
	Clock                   func() time.Time
}

// WithDefaults returns c with its zero fields set to the defaults, or an
// error wrapping ErrMTU, prefixed with the format name, when the MTU is out
// of bounds. SystemInit defaults to Clock() now.
func (c EncoderConfig) WithDefaults(name string) (EncoderConfig, error) {
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < MinMTU || c.MTU > MaxMTU {
		return c, fmt.Errorf("%s encoder: mtu %d outside [%d, %d]: %w", name, c.MTU, MinMTU, MaxMTU, ErrMTU)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.TemplateRefresh == 0 {
		c.TemplateRefresh = DefaultTemplateRefresh
	}
	if c.TemplateRefreshMessages == 0 {
		c.TemplateRefreshMessages = DefaultTemplateRefreshMessages
	}
	if c.SystemInit.IsZero() {
		c.SystemInit = c.Clock()
	}
	return c, nil
}

// Layout is what Encoder needs to know of a format's messages and of the
// templates it sends.
type Layout struct {
	Name      string // "ipfix", "netflow9": the prefix of errors
	Unit      string // what the format calls a message: "message", "packet"
	HeaderLen int
	Align     int // set padding, as for NewBuilder
	// Set ids of template and options template sets.
	SetTemplate, SetOptionsTemplate uint16
	// Flow4 and Flow6 are the flow templates of records whose source
	// address is and is not IPv6.
	Flow4, Flow6 ExportTemplate
	// Options are the options templates, sent one per set: some
	// collectors read only the first record of an options template set.
	Options []ExportTemplate
	// Pairs: each data record is written from two records in a row, a
	// biflow's initiator and responder (RFC 5103); Encode then takes an
	// even number of records.
	Pairs bool
}

// Format is what a format adds to Encoder: its header, template records,
// options data and flow records.
type Format interface {
	// ExportTime returns the export time of a message started at now.
	ExportTime(now time.Time) time.Time
	// TemplateRecordLen returns the length of t's record in a template or
	// options template set; PutTemplateRecord writes it into b.
	TemplateRecordLen(t *ExportTemplate) int
	PutTemplateRecord(b []byte, t *ExportTemplate)
	// PutOptions adds the options data records to o.
	PutOptions(o *OptionsData)
	// PutFlows writes recs as records of Flow6 when v6 is set, of Flow4
	// otherwise, into b, which has room for exactly these records (with
	// Layout.Pairs, for half as many: one data record per pair).
	PutFlows(b []byte, recs []flow.Record, v6 bool)
	// PutHeader writes the header of the complete message msg, exported
	// at now, whose records m counts. It returns the header's sequence
	// number and advances the format's own.
	PutHeader(msg []byte, m *Builder, now time.Time) (seq uint32)
}

// OptionsData collects the options data records of one message before
// Encoder packs them.
type OptionsData struct {
	buf  []byte
	recs []optRec
}

type optRec struct {
	id     uint16
	off, n int
}

// Add returns n zeroed octets for one record of data set id, to be
// written before the next Add.
func (o *OptionsData) Add(id uint16, n int) []byte {
	off := len(o.buf)
	o.buf = append(o.buf, make([]byte, n)...)
	o.recs = append(o.recs, optRec{id: id, off: off, n: n})
	return o.buf[off : off+n]
}

func (o *OptionsData) reset() {
	o.buf = o.buf[:0]
	o.recs = o.recs[:0]
}

// Encoder packs flow records into the messages of a template-based format:
// templates and options data first when due, then data sets of flow
// records, as many to a message as its MTU allows. It is not safe for
// concurrent use.
type Encoder struct {
	cfg     EncoderConfig
	l       Layout
	f       Format
	b       *Builder
	refresh Refresh
	opts    OptionsData

	open            bool // a message is started
	now             time.Time
	msgTpl, msgOpts bool
}

// NewEncoder returns an encoder; c must come from WithDefaults.
func NewEncoder(c EncoderConfig, l Layout, f Format) *Encoder {
	return &Encoder{
		cfg: c,
		l:   l,
		f:   f,
		b:   NewBuilder(c.MTU, l.HeaderLen, l.Align),
		refresh: Refresh{
			Interval: c.TemplateRefresh,
			Messages: c.TemplateRefreshMessages,
			Stream:   c.Stream,
		},
	}
}

// ForceTemplates makes the next message carry all templates and options
// data.
func (e *Encoder) ForceTemplates() { e.refresh.Force() }

// Encode packs recs into as few messages as the MTU allows and hands each
// to emit; the last, partly filled message is emitted before Encode
// returns, so nothing stays buffered. Templates and options data go first
// in a message when due; with no records Encode emits a message only when
// they are due. Records whose source address is not IPv6 use the IPv4
// template. It returns the number of records in messages emit accepted
// (with Layout.Pairs, of data records: one per pair); an emit error stops
// encoding and is returned wrapped.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	sent := 0
	step := 1
	if e.l.Pairs {
		step = 2
		if len(recs)%2 != 0 {
			return 0, fmt.Errorf("%s encoder: %d records do not make biflow pairs", e.l.Name, len(recs))
		}
	}
	for len(recs) > 0 {
		// Records of one address family in a row share a data set: take
		// as many of them as the message has room for at once.
		v6 := recs[0].Src.Is6()
		t := &e.l.Flow4
		if v6 {
			t = &e.l.Flow6
		}
		run, most := 1, e.cfg.MTU/t.Size
		for run < len(recs)/step && run < most && recs[run*step].Src.Is6() == v6 {
			run++
		}
		buf, n, err := e.reserveRun(t, run, emit, &sent)
		if err != nil {
			return sent, err
		}
		e.f.PutFlows(buf, recs[:n*step], v6)
		e.b.DataRecords += n
		e.b.FlowRecords += n
		recs = recs[n*step:]
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

// start starts an empty message.
func (e *Encoder) start() {
	e.b.Reset()
	e.open = true
	e.now = e.f.ExportTime(e.cfg.Clock())
	e.msgTpl, e.msgOpts = false, false
}

// begin starts a message and adds templates and options data when due.
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

func (e *Encoder) errMTU(n int) error {
	return fmt.Errorf("%s encoder: %d-octet record in a %d-octet %s: %w", e.l.Name, n, e.cfg.MTU, e.l.Unit, ErrMTU)
}

// reserveRun returns room for the first n (at least one) of want
// records of template t, starting messages and flushing full ones as
// needed.
func (e *Encoder) reserveRun(t *ExportTemplate, want int, emit func(Packet) error, sent *int) ([]byte, int, error) {
	if !e.open {
		if err := e.begin(emit, sent); err != nil {
			return nil, 0, err
		}
	}
	n := e.b.Room(t.ID, t.Size, want)
	if n == 0 {
		if err := e.flush(emit, sent); err != nil {
			return nil, 0, err
		}
		if err := e.begin(emit, sent); err != nil {
			return nil, 0, err
		}
		if n = e.b.Room(t.ID, t.Size, want); n == 0 {
			return nil, 0, e.errMTU(t.Size)
		}
	}
	return e.b.Reserve(t.ID, n*t.Size), n, nil
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
	e.start()
	if buf := e.b.Reserve(id, n); buf != nil {
		return buf, nil
	}
	return nil, e.errMTU(n)
}

func (e *Encoder) putTemplates(emit func(Packet) error, sent *int) error {
	for _, t := range []*ExportTemplate{&e.l.Flow4, &e.l.Flow6} {
		if err := e.putTemplate(e.l.SetTemplate, t, emit, sent); err != nil {
			return err
		}
	}
	for i := range e.l.Options {
		e.b.CloseSet()
		if err := e.putTemplate(e.l.SetOptionsTemplate, &e.l.Options[i], emit, sent); err != nil {
			return err
		}
	}
	return nil
}

func (e *Encoder) putTemplate(setID uint16, t *ExportTemplate, emit func(Packet) error, sent *int) error {
	buf, err := e.reserveMeta(setID, e.f.TemplateRecordLen(t), emit, sent)
	if err != nil {
		return err
	}
	e.f.PutTemplateRecord(buf, t)
	e.b.Templates++
	e.msgTpl = true
	return nil
}

func (e *Encoder) putOptions(emit func(Packet) error, sent *int) error {
	e.opts.reset()
	e.f.PutOptions(&e.opts)
	for _, r := range e.opts.recs {
		buf, err := e.reserveMeta(r.id, r.n, emit, sent)
		if err != nil {
			return err
		}
		copy(buf, e.opts.buf[r.off:r.off+r.n])
		e.b.DataRecords++
		e.msgOpts = true
	}
	return nil
}

// flush completes the open message and emits it.
func (e *Encoder) flush(emit func(Packet) error, sent *int) error {
	msg := e.b.Finish()
	p := Packet{Bytes: msg, Records: e.b.FlowRecords, Templates: e.msgTpl}
	p.Sequence = e.f.PutHeader(msg, e.b, e.now)
	e.refresh.Sent(e.now, e.msgTpl, e.msgOpts)
	e.open = false
	if err := emit(p); err != nil {
		return fmt.Errorf("%s encoder: emit %s of %d records: %w", e.l.Name, e.l.Unit, p.Records, err)
	}
	*sent += p.Records
	return nil
}

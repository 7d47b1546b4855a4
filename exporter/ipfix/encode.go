// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// DefaultMTU is the default maximum message size: the UDP payload that
// fits a 1500-octet path with room for tunnels.
const DefaultMTU = wire.DefaultMTU

// Message size bounds accepted by NewEncoder.
const (
	MinMTU = wire.MinMTU
	MaxMTU = wire.MaxMTU
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
	// SamplingRandom announces random sampling (each packet kept with
	// probability 1/SamplingInterval: PSAMP uniform probabilistic);
	// otherwise systematic count-based sampling (every Nth packet).
	SamplingRandom bool
	// Biflow makes every flow record a biflow record (RFC 5103): Encode
	// then takes records in pairs, each initiator followed by its
	// responder (whose counters may be zero), and writes one data record
	// per pair with the responder's values as reverse information
	// elements.
	Biflow bool
	// CaptureFilter announces capture filter counts (SetFiltered) in
	// options records of template TemplateFiltered.
	CaptureFilter bool
	// Cgroups adds applicationId (95) to the flow records: the local
	// socket's cgroup (flow.Record.CgroupID) with classification engine
	// 6, user defined; zeros for none. Options records of template
	// TemplateApps map each id to applicationName (96) and
	// applicationDescription (94, the cgroup path): a new id is announced
	// in the message that carries its first record (with the templates),
	// all of them with every refresh.
	Cgroups bool
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
type Packet = wire.Packet

// Encoder packs flow records into IPFIX messages. It is not safe for
// concurrent use.
type Encoder struct {
	w *wire.Encoder
	f format
}

// format is what IPFIX adds to wire.Encoder.
type format struct {
	cfg    Config
	v4, v6 wire.ExportTemplate
	stats  wire.ExportTemplate
	ifaces wire.ExportTemplate
	samp   wire.ExportTemplate
	sel    wire.ExportTemplate
	filt   wire.ExportTemplate
	apps   wire.ExportTemplate

	initMs         int64
	seq            uint32
	messages       uint64 // messages sent
	records        uint64 // flow records sent
	ignoredPackets uint64
	ignoredOctets  uint64
	interfaces     []wire.Interface
	filtered       []wire.FilterCount
	// The cgroups announced in TemplateApps records.
	cg wire.CgroupTable
}

// The longest applicationName and applicationDescription sent: longer
// ones are cut (a cgroup path is rarely past 200 octets).
const (
	maxAppName = 64
	maxAppPath = 400
)

// NewEncoder returns an encoder for one observation domain.
func NewEncoder(cfg Config) (*Encoder, error) {
	wc, err := wire.EncoderConfig{
		MTU:                     cfg.MTU,
		Stream:                  cfg.Stream,
		TemplateRefresh:         cfg.TemplateRefresh,
		TemplateRefreshMessages: cfg.TemplateRefreshMessages,
		SystemInit:              cfg.SystemInit,
		Clock:                   cfg.Clock,
	}.WithDefaults("ipfix")
	if err != nil {
		return nil, err
	}
	e := &Encoder{f: format{
		cfg:    cfg,
		v4:     wire.NewExportTemplate(TemplateIPv4, 0, flowFields(false, cfg.Biflow, cfg.Cgroups)),
		v6:     wire.NewExportTemplate(TemplateIPv6, 0, flowFields(true, cfg.Biflow, cfg.Cgroups)),
		apps:   wire.NewExportTemplate(TemplateApps, 1, appFields()),
		stats:  wire.NewExportTemplate(TemplateStats, 1, statsFields()),
		ifaces: wire.NewExportTemplate(TemplateInterfaces, 1, interfaceFields()),
		samp:   wire.NewExportTemplate(TemplateSampling, 1, samplingFields()),
		sel:    wire.NewExportTemplate(TemplateSelector, 1, selectorFields(cfg.SamplingRandom)),
		filt:   wire.NewExportTemplate(TemplateFiltered, 2, filteredFields()),
		initMs: wc.SystemInit.UnixMilli(),
	}}
	l := wire.Layout{
		Name:               "ipfix",
		Unit:               "message",
		HeaderLen:          HeaderLen,
		SetTemplate:        SetTemplate,
		SetOptionsTemplate: SetOptionsTemplate,
		Flow4:              e.f.v4,
		Flow6:              e.f.v6,
		Options:            []wire.ExportTemplate{e.f.stats, e.f.ifaces},
		Pairs:              cfg.Biflow,
	}
	if cfg.SamplingInterval > 1 {
		l.Options = append(l.Options, e.f.samp, e.f.sel)
	}
	if cfg.CaptureFilter {
		l.Options = append(l.Options, e.f.filt)
	}
	if cfg.Cgroups {
		l.Options = append(l.Options, e.f.apps)
	}
	e.w = wire.NewEncoder(wc, l, &e.f)
	return e, nil
}

// ForceTemplates makes the next message carry all templates and options
// data, e.g. when the transport learns the collector restarted.
func (e *Encoder) ForceTemplates() { e.w.ForceTemplates() }

// Reset starts a new transport session (a TCP reconnect): sequence numbers
// restart at zero and the next message carries the templates.
func (e *Encoder) Reset() {
	e.f.seq = 0
	e.w.ForceTemplates()
}

// SetInterfaces sets the interface names announced in options records; the
// next message carries them. Names longer than 255 octets are truncated.
func (e *Encoder) SetInterfaces(ifs []wire.Interface) {
	e.f.interfaces = append(e.f.interfaces[:0], ifs...)
	for i := range e.f.interfaces {
		if len(e.f.interfaces[i].Name) > 255 {
			e.f.interfaces[i].Name = e.f.interfaces[i].Name[:255]
		}
	}
	e.w.ForceTemplates()
}

// SetIgnored sets the totals of packets and octets the exporter observed
// but could not account for in a flow record, sent in the statistics
// options record (IEs 164, 165).
func (e *Encoder) SetIgnored(packets, octets uint64) {
	e.f.ignoredPackets, e.f.ignoredOctets = packets, octets
}

// SetSystemInit sets the systemInitTimeMilliseconds (IE 160) of the
// statistics options record: when the counters it carries began. An
// exporter whose metering goes on across its own restarts (kflow's
// pinned datapath maps) gives the metering's start, so that a collector
// adding up the totals of each start counts the ignored packets once.
func (e *Encoder) SetSystemInit(t time.Time) { e.f.initMs = t.UnixMilli() }

// SetFiltered sets the capture filter counts announced in the options
// records (with Config.CaptureFilter), sent with the other options data.
func (e *Encoder) SetFiltered(fs []wire.FilterCount) {
	e.f.filtered = append(e.f.filtered[:0], fs...)
}

// Counters returns the messages and flow records sent so far.
func (e *Encoder) Counters() (messages, records uint64) { return e.f.messages, e.f.records }

// Encode packs recs into as few messages as the MTU allows and hands each
// to emit; the last, partly filled message is emitted before Encode
// returns, so nothing stays buffered. Templates and options data go first
// in a message when due; with no records Encode emits a message only when
// they are due. Records whose source address is not IPv6 use the IPv4
// template. It returns the number of records in messages emit accepted;
// an emit error stops encoding and is returned wrapped.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	if e.f.cfg.Cgroups && e.f.cg.Learn(recs) {
		// New cgroups: announced before their first records, in the
		// options data that go with forced templates.
		e.w.ForceTemplates()
	}
	n, err := e.w.Encode(recs, emit)
	e.f.cg.Sent()
	return n, err
}

// ExportTime: the export time as the clock gives it.
func (f *format) ExportTime(now time.Time) time.Time { return now }

// PutFlows writes flow data records.
func (f *format) PutFlows(b []byte, recs []flow.Record, v6 bool) {
	n := flow4Len
	if v6 {
		n = flow6Len
	}
	step := 1
	if f.cfg.Biflow {
		n += revLen
		step = 2
	}
	app := 0
	if f.cfg.Cgroups {
		app = wire.AppIDLen
	}
	for k := 0; k < len(recs); k += step {
		rb := b[k/step*(n+app):]
		if v6 {
			putFlow6(rb, &recs[k])
		} else {
			putFlow4(rb, &recs[k])
		}
		if f.cfg.Biflow {
			putReverse(rb[n-revLen:], &recs[k+1])
		}
		if app != 0 {
			wire.PutAppID(rb[n:n+app], recs[k].CgroupID)
		}
	}
}

// PutOptions adds the statistics, interface name and sampling records.
func (f *format) PutOptions(o *wire.OptionsData) {
	buf := o.Add(TemplateStats, f.stats.Size)
	binary.BigEndian.PutUint32(buf[0:], f.cfg.ObservationDomain)
	binary.BigEndian.PutUint64(buf[4:], f.messages)
	binary.BigEndian.PutUint64(buf[12:], f.records)
	binary.BigEndian.PutUint64(buf[20:], uint64(f.initMs))
	binary.BigEndian.PutUint64(buf[28:], f.ignoredPackets)
	binary.BigEndian.PutUint64(buf[36:], f.ignoredOctets)

	for _, ifc := range f.interfaces {
		n := len(ifc.Name)
		hdr := 1
		if n >= 255 {
			hdr = 3
		}
		buf := o.Add(TemplateInterfaces, 4+hdr+n)
		binary.BigEndian.PutUint32(buf[0:], ifc.Index)
		if hdr == 1 {
			buf[4] = byte(n)
		} else {
			buf[4] = 255
			binary.BigEndian.PutUint16(buf[5:], uint16(n))
		}
		copy(buf[4+hdr:], ifc.Name)
	}

	if f.cfg.CaptureFilter {
		for _, fc := range f.filtered {
			buf := o.Add(TemplateFiltered, f.filt.Size)
			if fc.Direction == flow.Egress {
				binary.BigEndian.PutUint32(buf[4:], fc.Ifindex)
			} else {
				binary.BigEndian.PutUint32(buf[0:], fc.Ifindex)
			}
			binary.BigEndian.PutUint64(buf[8:], fc.Packets)
			binary.BigEndian.PutUint64(buf[16:], fc.Octets)
		}
	}

	f.cg.Each(func(id uint64, path string) {
		name := flow.ParseCgroup(path).AppName(path)
		// Bounded so that a record fits any message (MinMTU).
		name, path = name[:min(len(name), maxAppName)], path[:min(len(path), maxAppPath)]
		buf := o.Add(TemplateApps, wire.AppIDLen+varLenSize(len(name))+len(name)+varLenSize(len(path))+len(path))
		wire.PutAppID(buf, id)
		p := putVarLen(buf[wire.AppIDLen:], name) + wire.AppIDLen
		putVarLen(buf[p:], path)
	})

	if f.cfg.SamplingInterval > 1 {
		buf := o.Add(TemplateSampling, f.samp.Size)
		binary.BigEndian.PutUint32(buf[0:], f.cfg.ObservationDomain)
		binary.BigEndian.PutUint32(buf[4:], f.cfg.SamplingInterval)
		buf[8] = wire.SamplingDeterministic
		if f.cfg.SamplingRandom {
			buf[8] = wire.SamplingRandom
		}
		binary.BigEndian.PutUint32(buf[9:], 1)
		binary.BigEndian.PutUint32(buf[13:], f.cfg.SamplingInterval-1)

		buf = o.Add(TemplateSelector, f.sel.Size)
		binary.BigEndian.PutUint32(buf[0:], SelectorID)
		if f.cfg.SamplingRandom {
			binary.BigEndian.PutUint16(buf[4:], wire.SelectorUniformProbabilistic)
			binary.BigEndian.PutUint64(buf[6:], math.Float64bits(1/float64(f.cfg.SamplingInterval)))
		} else {
			binary.BigEndian.PutUint16(buf[4:], wire.SelectorCountBased)
			binary.BigEndian.PutUint32(buf[6:], 1)
			binary.BigEndian.PutUint32(buf[10:], f.cfg.SamplingInterval-1)
		}
	}
}

// PutHeader writes the message header and advances the sequence number.
func (f *format) PutHeader(msg []byte, m *wire.Builder, now time.Time) uint32 {
	seq := f.seq
	putHeader(msg, Header{Length: uint16(len(msg)), ExportTime: now, Sequence: seq, Domain: f.cfg.ObservationDomain})
	// The sequence number counts the data records sent before the message,
	// so it advances whether or not the transport delivers it.
	if f.cfg.SequenceAllRecords {
		f.seq += uint32(m.DataRecords)
	} else {
		f.seq += uint32(m.FlowRecords)
	}
	f.messages++
	f.records += uint64(m.FlowRecords)
	return seq
}

// varLenSize is the length prefix of a variable-length field of n octets
// (RFC 7011 section 7).
func varLenSize(n int) int {
	if n < 255 {
		return 1
	}
	return 3
}

// putVarLen writes v as a variable-length field and returns its length.
func putVarLen(b []byte, v string) int {
	if len(v) < 255 {
		b[0] = byte(len(v))
		return 1 + copy(b[1:], v)
	}
	b[0] = 255
	binary.BigEndian.PutUint16(b[1:], uint16(len(v)))
	return 3 + copy(b[3:], v)
}

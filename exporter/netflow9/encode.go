// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"encoding/binary"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// DefaultMTU is the default maximum packet size (UDP payload).
const DefaultMTU = wire.DefaultMTU

// Packet size bounds accepted by NewEncoder.
const (
	MinMTU = wire.MinMTU
	MaxMTU = wire.MaxMTU
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
	// SamplingInterval > 1 announces 1-in-N sampling in an options
	// record: random (SAMPLING_ALGORITHM 2) with SamplingRandom,
	// deterministic (1) otherwise.
	SamplingInterval uint32
	SamplingRandom   bool
	// CaptureFilter announces capture filter counts (SetFiltered) in
	// options records of template TemplateFiltered.
	CaptureFilter bool
	// Cgroups adds APPLICATION_TAG (95) to the flow records: the local
	// socket's cgroup, as IPFIX's applicationId; options records of
	// template TemplateApps (scope System) map each to APPLICATION_NAME
	// (96) and APPLICATION_DESCRIPTION (94, the cgroup path), of fixed
	// lengths AppNameLen and AppDescLen.
	Cgroups bool
	// SystemInit is the instant sysUptime counts from; default Clock() at
	// NewEncoder.
	SystemInit time.Time
	// Clock returns the export time; default time.Now.
	Clock func() time.Time
}

// Packet is one encoded export packet handed to the transport.
type Packet = wire.Packet

// Encoder packs flow records into NetFlow v9 export packets. It is not
// safe for concurrent use.
type Encoder struct {
	w *wire.Encoder
	f format
}

// format is what NetFlow v9 adds to wire.Encoder.
type format struct {
	cfg    Config
	v4, v6 wire.ExportTemplate
	stats  wire.ExportTemplate
	ifaces wire.ExportTemplate
	samp   wire.ExportTemplate
	filt   wire.ExportTemplate
	apps   wire.ExportTemplate
	cg     wire.CgroupTable

	initMs         int64
	meteringInitMs int64 // systemInitTimeMilliseconds of the statistics
	seq            uint32
	records        uint64
	ignoredPackets uint64
	ignoredOctets  uint64
	interfaces     []wire.Interface
	filtered       []wire.FilterCount
}

// NewEncoder returns an encoder for one source id.
func NewEncoder(cfg Config) (*Encoder, error) {
	wc, err := wire.EncoderConfig{
		MTU:                     cfg.MTU,
		TemplateRefresh:         cfg.TemplateRefresh,
		TemplateRefreshMessages: cfg.TemplateRefreshMessages,
		SystemInit:              cfg.SystemInit,
		Clock:                   cfg.Clock,
	}.WithDefaults("netflow9")
	if err != nil {
		return nil, err
	}
	e := &Encoder{f: format{
		cfg:    cfg,
		v4:     wire.NewExportTemplate(TemplateIPv4, 0, flowFields(false, cfg.Cgroups)),
		v6:     wire.NewExportTemplate(TemplateIPv6, 0, flowFields(true, cfg.Cgroups)),
		apps:   wire.NewExportTemplate(TemplateApps, 1, appFields()),
		stats:  wire.NewExportTemplate(TemplateStats, 1, statsFields()),
		ifaces: wire.NewExportTemplate(TemplateInterfaces, 1, interfaceFields()),
		samp:   wire.NewExportTemplate(TemplateSampling, 1, samplingFields()),
		filt:   wire.NewExportTemplate(TemplateFiltered, 1, filteredFields()),
		initMs: wc.SystemInit.UnixMilli(),
	}}
	e.f.meteringInitMs = e.f.initMs
	// RFC 3954 section 6.1 shows one options template per FlowSet; some
	// collectors read no more.
	l := wire.Layout{
		Name:               "netflow9",
		Unit:               "packet",
		HeaderLen:          HeaderLen,
		Align:              4,
		SetTemplate:        SetTemplate,
		SetOptionsTemplate: SetOptionsTemplate,
		Flow4:              e.f.v4,
		Flow6:              e.f.v6,
		Options:            []wire.ExportTemplate{e.f.stats, e.f.ifaces},
	}
	if cfg.SamplingInterval > 1 {
		l.Options = append(l.Options, e.f.samp)
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

// ForceTemplates makes the next packet carry all templates and options
// data.
func (e *Encoder) ForceTemplates() { e.w.ForceTemplates() }

// SetInterfaces sets the interface names announced in options records
// (IF_NAME, truncated to IfNameLen octets); the next packet carries them.
func (e *Encoder) SetInterfaces(ifs []wire.Interface) {
	e.f.interfaces = append(e.f.interfaces[:0], ifs...)
	e.w.ForceTemplates()
}

// SetIgnored sets the totals of packets and octets observed but not
// accounted for in a flow record.
func (e *Encoder) SetIgnored(packets, octets uint64) {
	e.f.ignoredPackets, e.f.ignoredOctets = packets, octets
}

// SetMeteringInit sets when the counters of the statistics records began
// (their systemInitTimeMilliseconds, IE 160; default Config.SystemInit):
// an exporter that adopts another's datapath counts its ignored packets
// from when that one created it. sysUptime keeps counting from
// Config.SystemInit.
func (e *Encoder) SetMeteringInit(t time.Time) { e.f.meteringInitMs = t.UnixMilli() }

// SetFiltered sets the capture filter counts announced in the options
// records (with Config.CaptureFilter), sent with the other options data.
func (e *Encoder) SetFiltered(fs []wire.FilterCount) {
	e.f.filtered = append(e.f.filtered[:0], fs...)
}

// Counters returns the packets and flow records sent so far.
func (e *Encoder) Counters() (packets, records uint64) { return uint64(e.f.seq), e.f.records }

// Encode packs recs into as few packets as the MTU allows and hands each to
// emit; nothing stays buffered when it returns. With no records it emits a
// packet only when templates are due. Records whose source address is not
// IPv6 use the IPv4 template. It returns the number of records in packets
// emit accepted; an emit error stops encoding and is returned wrapped.
func (e *Encoder) Encode(recs []flow.Record, emit func(Packet) error) (int, error) {
	if e.f.cfg.Cgroups && e.f.cg.Learn(recs) {
		e.w.ForceTemplates() // new cgroups: announced before their records
	}
	n, err := e.w.Encode(recs, emit)
	e.f.cg.Sent()
	return n, err
}

// ExportTime: the header carries unix_secs only: use the export time
// truncated to the second for both unix_secs and sysUptime, so that
// collectors computing boot time as unix_secs - sysUptime get it to the ms.
func (f *format) ExportTime(now time.Time) time.Time { return now.Truncate(time.Second) }

// PutFlows writes flow data records.
func (f *format) PutFlows(b []byte, recs []flow.Record, v6 bool) {
	n := flow4Len
	if v6 {
		n = flow6Len
	}
	app := 0
	if f.cfg.Cgroups {
		app = wire.AppIDLen
	}
	for k := range recs {
		rb := b[k*(n+app):]
		if v6 {
			putFlow6(rb, &recs[k], f.initMs)
		} else {
			putFlow4(rb, &recs[k], f.initMs)
		}
		if app != 0 {
			wire.PutAppID(rb[n:n+app], recs[k].CgroupID)
		}
	}
}

// PutOptions adds the statistics, interface name and sampling records.
func (f *format) PutOptions(o *wire.OptionsData) {
	buf := o.Add(TemplateStats, f.stats.Size)
	binary.BigEndian.PutUint32(buf[0:], f.cfg.SourceID)
	binary.BigEndian.PutUint64(buf[4:], uint64(f.seq))
	binary.BigEndian.PutUint64(buf[12:], f.records)
	binary.BigEndian.PutUint64(buf[20:], uint64(f.meteringInitMs))
	binary.BigEndian.PutUint64(buf[28:], f.ignoredPackets)
	binary.BigEndian.PutUint64(buf[36:], f.ignoredOctets)

	f.cg.Each(func(id uint64, path string) {
		buf := o.Add(TemplateApps, f.apps.Size)
		binary.BigEndian.PutUint32(buf[0:], f.cfg.SourceID)
		wire.PutAppID(buf[4:], id)
		copy(buf[4+wire.AppIDLen:4+wire.AppIDLen+AppNameLen], flow.ParseCgroup(path).AppName(path))
		copy(buf[4+wire.AppIDLen+AppNameLen:], path[:min(len(path), AppDescLen)])
	})

	for _, ifc := range f.interfaces {
		buf := o.Add(TemplateInterfaces, f.ifaces.Size)
		binary.BigEndian.PutUint32(buf[0:], ifc.Index)
		copy(buf[4:4+IfNameLen], ifc.Name)
	}

	if f.cfg.CaptureFilter {
		for _, fc := range f.filtered {
			buf := o.Add(TemplateFiltered, f.filt.Size)
			binary.BigEndian.PutUint32(buf[0:], fc.Ifindex)
			buf[4] = byte(fc.Direction)
			binary.BigEndian.PutUint64(buf[5:], fc.Packets)
			binary.BigEndian.PutUint64(buf[13:], fc.Octets)
		}
	}

	if f.cfg.SamplingInterval > 1 {
		buf := o.Add(TemplateSampling, f.samp.Size)
		binary.BigEndian.PutUint32(buf[0:], f.cfg.SourceID)
		binary.BigEndian.PutUint32(buf[4:], f.cfg.SamplingInterval)
		buf[8] = wire.SamplingDeterministic // SAMPLING_ALGORITHM
		if f.cfg.SamplingRandom {
			buf[8] = wire.SamplingRandom
		}
		binary.BigEndian.PutUint32(buf[9:], 1)
		binary.BigEndian.PutUint32(buf[13:], f.cfg.SamplingInterval-1)
	}
}

// PutHeader writes the packet header and advances the sequence number.
func (f *format) PutHeader(msg []byte, m *wire.Builder, now time.Time) uint32 {
	seq := f.seq
	putHeader(msg, Header{
		Count:      uint16(m.Templates + m.DataRecords),
		SysUptime:  uint32(now.UnixMilli() - f.initMs),
		ExportTime: now,
		Sequence:   seq,
		SourceID:   f.cfg.SourceID,
	})
	// RFC 3954: the sequence number counts export packets.
	f.seq++
	f.records += uint64(m.FlowRecords)
	return seq
}

// SPDX-License-Identifier: Apache-2.0

package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/sflow"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// Defaults of HandlerConfig.
const (
	DefaultHoldTime     = 10 * time.Second
	DefaultMaxHeldSets  = 1024
	DefaultMaxHeldBytes = 4 << 20
	DefaultMaxExporters = 4096
	// maxSeqDomains bounds the (version, domain) sequence states kept per
	// exporter.
	maxSeqDomains = 256
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	Sink RecordSink
	// Allow lists the exporter prefixes accepted; empty accepts all.
	Allow []netip.Prefix
	// Limits bound the templates of each exporter session.
	Limits wire.Limits
	// HoldTime is how long a data set whose template is unknown is kept
	// waiting for it (default DefaultHoldTime).
	HoldTime time.Duration
	// MaxHeldSets and MaxHeldBytes bound the data sets held per exporter
	// (defaults DefaultMaxHeldSets, DefaultMaxHeldBytes).
	MaxHeldSets  int
	MaxHeldBytes int
	// MaxExporters bounds the exporter sessions; past it the least
	// recently seen one is forgotten (default DefaultMaxExporters).
	MaxExporters int
}

func (c HandlerConfig) withDefaults() HandlerConfig {
	if c.HoldTime <= 0 {
		c.HoldTime = DefaultHoldTime
	}
	if c.MaxHeldSets <= 0 {
		c.MaxHeldSets = DefaultMaxHeldSets
	}
	if c.MaxHeldBytes <= 0 {
		c.MaxHeldBytes = DefaultMaxHeldBytes
	}
	if c.MaxExporters <= 0 {
		c.MaxExporters = DefaultMaxExporters
	}
	return c
}

// Source identifies an exporter transport session: the exporter's address
// and port, and for TCP the connection (templates live as long as it).
type Source struct {
	Addr netip.AddrPort
	Conn uint64 // TCP connection number, from 1; 0 for UDP
}

// Transport returns "udp" or "tcp".
func (s Source) Transport() string {
	if s.Conn != 0 {
		return "tcp"
	}
	return "udp"
}

type seqKey struct {
	version uint16
	domain  uint32
}

type seqState struct {
	next   uint32
	synced bool
	// alt is a second acceptable next number: IPFIX exporters differ on
	// whether options data records count (RFC 7011's wording) or only
	// flow records (nfdump's check, and kflow's default).
	alt uint32
	// allRecords is set once a message matched next but not alt: the
	// exporter counts options records too. Until then a gap is measured
	// from alt.
	allRecords bool
	// restored: the state is a previous run's (Config.StateFile), not yet
	// checked against this run's first message.
	restored bool
}

type heldSet struct {
	version uint16
	set     wire.MissingSet
	expires time.Time
}

// exporter is the decoding state of one Source.
type exporter struct {
	src       Source
	addr      netip.Addr
	stats     ExporterStats
	v9        *netflow9.Session
	v10       *ipfix.Session
	seq       map[seqKey]*seqState
	held      []heldSet
	heldBytes int
	sflow     *sflowState // nil until the exporter sends sFlow
	// savedTemplates: the sessions hold a previous run's templates, not
	// yet checked against the exporter's first message.
	savedTemplates bool
}

// Handler decodes the messages of any number of exporters and stores
// their records in a sink: the collector's per-exporter decode stage. Its
// methods are safe for concurrent use (a mutex; the server gives each
// worker its own Handler).
type Handler struct {
	cfg        HandlerConfig
	mu         sync.Mutex
	exporters  map[Source]*exporter
	notAllowed uint64
	evicted    uint64
	v5         *netflow5.Decoder
	m5         netflow5.Message
	m9, h9     netflow9.Message
	m10, h10   ipfix.Message
	sd         sflow.Datagram
	// storing is the exporter whose records store is appending, for
	// storeFailed (a method value made once, so no closure per message).
	storing     *exporter
	storingRecs []flow.Record
	// restored are the sequence states a previous run left (nil: none).
	restored    *restored
	storeFailed func(i int, err error)
}

// NewHandler returns a handler storing into cfg.Sink.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Sink == nil {
		return nil, errors.New("handler: no sink")
	}
	h := &Handler{
		cfg:       cfg.withDefaults(),
		exporters: make(map[Source]*exporter),
		v5:        netflow5.NewDecoder(),
	}
	h.storeFailed = h.countStoreError
	return h, nil
}

func (h *Handler) countStoreError(i int, err error) {
	h.storing.refused(&h.storingRecs[i], err)
}

// refused counts a record the sink refused, with its packets and octets.
func (e *exporter) refused(r *flow.Record, err error) {
	e.stats.StoreErrors++
	e.stats.StoreErrorPackets += r.Packets
	e.stats.StoreErrorOctets += r.Octets
	e.stats.LastError = err.Error()
}

func (h *Handler) allowed(a netip.Addr) bool {
	if len(h.cfg.Allow) == 0 {
		return true
	}
	for _, p := range h.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allowed reports whether messages from a are accepted.
func (h *Handler) Allowed(a netip.Addr) bool { return h.allowed(a.Unmap()) }

func (h *Handler) exporter(src Source, addr netip.Addr, now time.Time) *exporter {
	if e := h.exporters[src]; e != nil {
		return e
	}
	if len(h.exporters) >= h.cfg.MaxExporters {
		var old *exporter
		for _, e := range h.exporters {
			if old == nil || e.stats.LastSeen.Before(old.stats.LastSeen) {
				old = e
			}
		}
		h.evict(old)
	}
	e := &exporter{
		src:  src,
		addr: addr,
		seq:  make(map[seqKey]*seqState),
		stats: ExporterStats{
			Exporter: netip.AddrPortFrom(addr, src.Addr.Port()), Transport: src.Transport(),
			FirstSeen: now, Versions: map[uint16]uint64{}, DecodeErrors: map[string]uint64{},
		},
	}
	h.exporters[src] = e
	if src.Conn == 0 && h.restored != nil {
		h.restoreSessions(e)
	}
	return e
}

func (h *Handler) evict(e *exporter) {
	h.dropHeld(e, len(e.held))
	delete(h.exporters, e.src)
	h.evicted++
}

// HandlePacket decodes one message (a UDP datagram, or one IPFIX message
// read from a TCP connection) received at now from src, and stores its
// records. Problems are counted in the exporter's stats, never returned:
// the next message is independent.
func (h *Handler) HandlePacket(src Source, b []byte, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := src.Addr.Addr().Unmap()
	if !h.allowed(addr) {
		h.notAllowed++
		return
	}
	e := h.exporter(src, addr, now)
	e.stats.Packets++
	e.stats.Bytes += uint64(len(b))
	e.stats.LastSeen = now
	h.expireHeld(e, now)
	if len(b) < 2 {
		e.decodeError(&wire.DecodeError{Err: fmt.Errorf("message of %d octets: %w", len(b), wire.ErrTruncated)})
		return
	}
	if sflow.IsSFlow(b) {
		h.handleSFlow(e, b, now)
		return
	}
	v := binary.BigEndian.Uint16(b)
	switch v {
	case netflow5.Version:
		e.stats.Versions[v]++
		h.handleV5(e, b)
	case netflow9.Version:
		e.stats.Versions[v]++
		h.handleV9(e, b, now)
	case ipfix.Version:
		e.stats.Versions[v]++
		h.handleIPFIX(e, b, now)
	default:
		e.decodeError(&wire.DecodeError{Version: v, Err: fmt.Errorf("version %d: %w", v, wire.ErrVersion)})
	}
}

func (e *exporter) decodeError(err error) {
	e.stats.DecodeErrors[ErrorKind(err)]++
	e.stats.LastError = err.Error()
}

func (h *Handler) handleV5(e *exporter, b []byte) {
	m := &h.m5
	if err := h.v5.Decode(m, b); err != nil {
		e.decodeError(err)
		return
	}
	h.sequence(e, netflow5.Version, m.Header.Domain(), m.Header.FlowSequence, uint32(m.Header.Count), false)
	h.store(e, m.Records)
}

func (h *Handler) handleV9(e *exporter, b []byte, now time.Time) {
	if e.savedTemplates {
		h.checkSaved(e, netflow9.Version, b)
	}
	if e.v9 == nil {
		e.v9 = netflow9.NewSession(h.cfg.Limits)
	}
	m := &h.m9
	err := e.v9.Decode(m, b)
	if err != nil {
		e.decodeError(err)
	}
	if len(b) >= netflow9.HeaderLen {
		h.sequence(e, netflow9.Version, m.Header.SourceID, m.Header.Sequence, 1, false)
	}
	h.account(e, &m.Data)
	h.hold(e, netflow9.Version, m.Missing, now)
	h.store(e, m.Records)
	if m.Templates > 0 && len(e.held) > 0 {
		h.retryHeld(e, netflow9.Version)
	}
}

func (h *Handler) handleIPFIX(e *exporter, b []byte, now time.Time) {
	if e.savedTemplates {
		h.checkSaved(e, ipfix.Version, b)
	}
	if e.v10 == nil {
		e.v10 = ipfix.NewSession(h.cfg.Limits)
	}
	m := &h.m10
	err := e.v10.Decode(m, b)
	if err != nil {
		e.decodeError(err)
	}
	if len(b) >= ipfix.HeaderLen {
		// The sequence number counts data records; a message with sets
		// whose records cannot be counted (no template, malformed) leaves
		// the next number unknown: resynchronise on the next message.
		resync := err != nil || len(m.Missing) > 0
		h.sequenceAlt(e, ipfix.Version, m.Header.Domain, m.Header.Sequence, uint32(m.DataRecords), uint32(len(m.Records)-m.Reversed), resync)
	}
	h.account(e, &m.Data)
	h.hold(e, ipfix.Version, m.Missing, now)
	h.store(e, m.Records)
	if m.Templates > 0 && len(e.held) > 0 {
		h.retryHeld(e, ipfix.Version)
	}
}

func (h *Handler) account(e *exporter, d *wire.Data) {
	e.stats.Templates += uint64(d.Templates)
	e.stats.Withdrawals += uint64(d.Withdrawn)
	e.stats.OptionsRecords += uint64(len(d.Stats) + len(d.Interfaces) + len(d.Sampling))
	h.report(e, d)
}

// report keeps what the exporter said about itself: in its statistics
// (metrics) and, through the sink, in its flow files.
func (h *Handler) report(e *exporter, d *wire.Data) {
	if len(d.Stats)+len(d.Interfaces)+len(d.Sampling) == 0 {
		return
	}
	addr := e.addr
	byDomain := map[uint32]*flowfile.ExporterReport{}
	get := func(domain uint32) *flowfile.ExporterReport {
		r := byDomain[domain]
		if r == nil {
			r = &flowfile.ExporterReport{Addr: addr, Domain: domain}
			byDomain[domain] = r
		}
		return r
	}
	for _, st := range d.Stats {
		r := get(st.Domain)
		r.HasStats, r.SystemInit, r.Received = true, st.SystemInit, time.Now()
		r.Messages, r.Records, r.Octets = st.Messages, st.Records, st.Octets
		r.IgnoredPackets, r.IgnoredOctets = st.IgnoredPackets, st.IgnoredOctets
	}
	for _, in := range d.Interfaces {
		r := get(in.Domain)
		if r.Interfaces == nil {
			r.Interfaces = map[uint32]string{}
		}
		r.Interfaces[in.Index] = in.Name
	}
	for _, sa := range d.Sampling {
		r := get(sa.Domain)
		r.SamplingInterval, r.SamplingAlgorithm = sa.Interval, sa.Algorithm
		if sa.HasSamplerID {
			if r.Samplers == nil {
				r.Samplers = map[uint64]uint32{}
			}
			r.Samplers[sa.SamplerID] = sa.Interval
		}
	}
	rs, _ := h.cfg.Sink.(reportSink)
	for _, r := range byDomain {
		e.stats.addReport(r)
		if rs != nil {
			rs.Report(r)
		}
	}
}

func (h *Handler) sequence(e *exporter, version uint16, domain, seq, advance uint32, resync bool) {
	h.sequenceAlt(e, version, domain, seq, advance, advance, resync)
}

// sequenceAlt checks seq against what the previous message announced and
// counts a gap when it matches neither way of counting (advance, or alt).
func (h *Handler) sequenceAlt(e *exporter, version uint16, domain, seq, advance, alt uint32, resync bool) {
	k := seqKey{version, domain}
	st := e.seq[k]
	if st == nil {
		if len(e.seq) >= maxSeqDomains {
			return
		}
		st = &seqState{}
		if e.src.Conn == 0 {
			if rs, ok := h.restored.take(e.src.Addr, version, domain); ok {
				st = &seqState{next: rs.Next, alt: rs.Alt, allRecords: rs.AllRecords, synced: true, restored: true}
			}
		}
		e.seq[k] = st
	}
	if st.restored {
		// The first message since a restart: what the exporter sent
		// after the previous run's last flush did not reach the files.
		st.restored = false
		from := st.alt
		if st.allRecords {
			from = st.next
		}
		if d := int32(seq - from); d > 0 && seq != st.next {
			e.stats.RestartLost += uint64(d)
			h.cfg.Sink.SequenceFailures(e.addr, domain, 1)
		}
		st.next, st.alt, st.synced = seq+advance, seq+alt, !resync
		return
	}
	switch {
	case !st.synced:
	case seq == st.next && seq != st.alt:
		st.allRecords = true
	case seq == st.next || seq == st.alt:
	default:
		e.stats.SequenceGaps++
		from := st.alt
		if st.allRecords {
			from = st.next
		}
		if d := int32(seq - from); d > 0 {
			e.stats.SequenceLost += uint64(d)
		}
		h.cfg.Sink.SequenceFailures(e.addr, domain, 1)
	}
	st.next = seq + advance
	st.alt = seq + alt
	st.synced = !resync
}

func satMul(v uint64, n uint32) uint64 {
	if v > math.MaxUint64/uint64(n) {
		return math.MaxUint64
	}
	return v * uint64(n)
}

// store stamps records with their exporter, scales sampled counters and
// appends them to the sink.
func (h *Handler) store(e *exporter, recs []flow.Record) {
	for i := range recs {
		recs[i].Exporter = e.addr
	}
	h.storeStamped(e, recs)
}

// storeStamped scales sampled counters of records whose exporter is set
// and appends them to the sink.
func (h *Handler) storeStamped(e *exporter, recs []flow.Record) {
	for i := range recs {
		r := &recs[i]
		if si := r.SamplingInterval; si > 1 {
			r.Packets = satMul(r.Packets, si)
			r.Octets = satMul(r.Octets, si)
		}
	}
	if bs, ok := h.cfg.Sink.(batchSink); ok {
		if len(recs) == 0 {
			return
		}
		h.storing, h.storingRecs = e, recs
		n := bs.AppendAll(recs, h.storeFailed)
		h.storing, h.storingRecs = nil, nil
		e.stats.Records += uint64(n)
		return
	}
	for i := range recs {
		r := &recs[i]
		if err := h.cfg.Sink.Append(r); err != nil {
			e.refused(r, err)
			continue
		}
		e.stats.Records++
	}
}

// hold keeps copies of data sets that arrived before their template.
func (h *Handler) hold(e *exporter, version uint16, missing []wire.MissingSet, now time.Time) {
	for _, ms := range missing {
		e.stats.TemplateMisses++
		n := len(ms.Body)
		if n > h.cfg.MaxHeldBytes {
			e.stats.HeldDropped++
			continue
		}
		drop, after := 0, e.heldBytes
		for drop < len(e.held) && (len(e.held)-drop >= h.cfg.MaxHeldSets || after+n > h.cfg.MaxHeldBytes) {
			after -= len(e.held[drop].set.Body)
			drop++
		}
		h.dropHeld(e, drop)
		ms.Body = bytes.Clone(ms.Body)
		e.held = append(e.held, heldSet{version: version, set: ms, expires: now.Add(h.cfg.HoldTime)})
		e.heldBytes += n
	}
}

// dropHeld drops the n oldest held sets, counting them.
func (h *Handler) dropHeld(e *exporter, n int) {
	if n == 0 {
		return
	}
	for _, hs := range e.held[:n] {
		e.heldBytes -= len(hs.set.Body)
	}
	e.stats.HeldDropped += uint64(n)
	clear(e.held[:n])
	e.held = slices.Delete(e.held, 0, n)
}

func (h *Handler) expireHeld(e *exporter, now time.Time) {
	n := 0
	for n < len(e.held) && !now.Before(e.held[n].expires) {
		n++
	}
	h.dropHeld(e, n)
}

// retryHeld decodes the held sets of a version whose template is now
// known.
func (h *Handler) retryHeld(e *exporter, version uint16) {
	kept := e.held[:0]
	for _, hs := range e.held {
		if hs.version != version {
			kept = append(kept, hs)
			continue
		}
		var err error
		var d *wire.Data
		switch version {
		case netflow9.Version:
			h.h9.Data.Reset()
			err = e.v9.DecodeHeld(&h.h9, hs.set)
			d = &h.h9.Data
		default:
			h.h10.Data.Reset()
			err = e.v10.DecodeHeld(&h.h10, hs.set)
			d = &h.h10.Data
		}
		if errors.Is(err, wire.ErrMissingTemplate) {
			kept = append(kept, hs)
			continue
		}
		e.heldBytes -= len(hs.set.Body)
		if err != nil {
			e.decodeError(err)
			e.stats.HeldDropped++
		} else {
			e.stats.HeldDecoded++
		}
		h.account(e, d)
		h.store(e, d.Records)
	}
	clear(e.held[len(kept):])
	e.held = kept
}

// ExpireHeld drops the held data sets whose time is up. The server calls
// it on every flush tick, so that sets of an exporter that went quiet are
// counted too.
func (h *Handler) ExpireHeld(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.exporters {
		h.expireHeld(e, now)
	}
}

// CloseSession ends a TCP connection's session: its templates and held
// sets go (held sets are counted as dropped); its counters stay.
func (h *Handler) CloseSession(src Source) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.exporters[src]
	if e == nil {
		return
	}
	h.dropHeld(e, len(e.held))
	e.v9, e.v10 = nil, nil
	clear(e.seq)
}

// StreamError counts an error that ended a TCP stream (a message header
// that cannot be framed).
func (h *Handler) StreamError(src Source, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	addr := src.Addr.Addr().Unmap()
	if !h.allowed(addr) {
		return
	}
	h.exporter(src, addr, now).decodeError(err)
}

// DropHeld drops every held data set (at shutdown), counting them.
func (h *Handler) DropHeld() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.exporters {
		h.dropHeld(e, len(e.held))
	}
}

// Stats returns a snapshot of the handler's counters (Listeners and Files
// are left empty).
func (h *Handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{NotAllowed: h.notAllowed, Evicted: h.evicted}
	for _, e := range h.exporters {
		st := e.stats.clone()
		if e.sflow != nil {
			st.SFlow = e.sflow.snapshot()
		}
		s.Exporters = append(s.Exporters, st)
	}
	sortExporters(s.Exporters)
	return s
}

func sortExporters(es []ExporterStats) {
	slices.SortFunc(es, func(a, b ExporterStats) int {
		if c := a.Exporter.Compare(b.Exporter); c != 0 {
			return c
		}
		if a.Transport != b.Transport {
			if a.Transport < b.Transport {
				return -1
			}
			return 1
		}
		return a.FirstSeen.Compare(b.FirstSeen)
	})
}

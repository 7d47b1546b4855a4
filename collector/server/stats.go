// SPDX-License-Identifier: Apache-2.0

package server

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// ExporterStats are the counters of one exporter transport session (its
// address and port; for TCP, one connection).
type ExporterStats struct {
	Exporter  netip.AddrPort
	Transport string // "udp" or "tcp"
	FirstSeen time.Time
	LastSeen  time.Time
	Packets   uint64 // messages received
	Bytes     uint64 // their size
	// Versions counts NetFlow and IPFIX messages by protocol version (5,
	// 9, 10); sFlow datagrams are counted in SFlow.
	Versions map[uint16]uint64
	Records  uint64 // flow records stored
	// OptionsRecords counts options data records decoded (exporter
	// statistics, interface names, sampling).
	OptionsRecords uint64
	// DecodeErrors counts malformed messages by kind (see ErrorKind).
	DecodeErrors map[string]uint64
	Templates    uint64 // template records received (refreshes included)
	Withdrawals  uint64 // templates withdrawn
	// TemplateMisses counts data sets that arrived before their template;
	// each is then decoded late (HeldDecoded) or dropped (HeldDropped).
	TemplateMisses uint64
	HeldDecoded    uint64
	HeldDropped    uint64
	// SequenceGaps counts sequence number discontinuities; SequenceLost is
	// what the forward gaps say is missing (v5: flows, v9: packets, IPFIX:
	// data records).
	SequenceGaps uint64
	SequenceLost uint64
	// RestartLost is what the sequence numbers say the exporter sent
	// between the last flush of the previous run (Config.StateFile) and
	// its first message to this one: lost while the collector was down,
	// or received and not yet flushed when it ended (UDP).
	RestartLost uint64
	StoreErrors uint64 // records the sink refused
	// StoreErrorPackets and StoreErrorOctets are what those records
	// counted: what a ledger of packets needs.
	StoreErrorPackets, StoreErrorOctets uint64
	// LastError is the last decode or store error, for the caller's
	// (rate-limited) log.
	LastError string
	// Reports are what the exporter said about itself in options records,
	// per observation domain: the last exporter statistics (ignored
	// packets and octets among them), interface names, sampling.
	Reports []flowfile.ExporterReport `json:",omitempty"`
	// SFlow is what sFlow agents sent, nil when none did.
	SFlow *SFlowStats `json:",omitempty"`
}

func (s *ExporterStats) clone() ExporterStats {
	c := *s
	c.Versions = maps.Clone(s.Versions)
	c.DecodeErrors = maps.Clone(s.DecodeErrors)
	c.Reports = slices.Clone(s.Reports)
	for i := range c.Reports {
		c.Reports[i].Interfaces = maps.Clone(c.Reports[i].Interfaces)
		c.Reports[i].Samplers = maps.Clone(c.Reports[i].Samplers)
	}
	return c
}

// maxReportDomains bounds the observation domains an exporter session
// keeps reports of.
const maxReportDomains = 64

func (s *ExporterStats) addReport(u *flowfile.ExporterReport) {
	for i := range s.Reports {
		if s.Reports[i].Domain == u.Domain {
			s.Reports[i].Merge(u)
			return
		}
	}
	if len(s.Reports) < maxReportDomains {
		r := flowfile.ExporterReport{Addr: u.Addr, Domain: u.Domain}
		r.Merge(u)
		s.Reports = append(s.Reports, r)
	}
}

// ListenerStats are the counters of one socket.
type ListenerStats struct {
	Addr    string // udp://ADDR:PORT or tcp://ADDR:PORT
	Packets uint64 // datagrams or messages read
	// KernelDrops is the number of datagrams the kernel dropped because
	// the socket's receive buffer was full (SO_RXQ_OVFL).
	KernelDrops  uint64
	Conns        uint64 // TCP connections accepted
	ConnsRefused uint64 // TCP connections refused (not allowed, too many)
}

// Stats is a snapshot of the collector's counters.
type Stats struct {
	Exporters []ExporterStats // sorted by address and port
	Listeners []ListenerStats
	// NotAllowed counts messages from addresses outside the allow list,
	// ignored.
	NotAllowed uint64
	// Evicted counts exporter sessions dropped to stay within
	// MaxExporters (their templates are forgotten).
	Evicted uint64
	// FlushErrors counts failed sink flushes; LastFlushError is the last.
	// Flushes counts them all.
	FlushErrors, Flushes uint64
	LastFlushError       string
	Files                FileStats // zero unless the sink is a FileSink
}

// Totals adds up the exporters' counters.
func (s Stats) Totals() ExporterStats {
	var t ExporterStats
	t.DecodeErrors = map[string]uint64{}
	t.Versions = map[uint16]uint64{}
	for _, e := range s.Exporters {
		t.Packets += e.Packets
		t.Bytes += e.Bytes
		t.Records += e.Records
		t.OptionsRecords += e.OptionsRecords
		t.Templates += e.Templates
		t.Withdrawals += e.Withdrawals
		t.TemplateMisses += e.TemplateMisses
		t.HeldDecoded += e.HeldDecoded
		t.HeldDropped += e.HeldDropped
		t.SequenceGaps += e.SequenceGaps
		t.SequenceLost += e.SequenceLost
		t.RestartLost += e.RestartLost
		t.StoreErrors += e.StoreErrors
		t.StoreErrorPackets += e.StoreErrorPackets
		t.StoreErrorOctets += e.StoreErrorOctets
		for k, v := range e.DecodeErrors {
			t.DecodeErrors[k] += v
		}
		for k, v := range e.Versions {
			t.Versions[k] += v
		}
	}
	return t
}

// Decode error kinds.
const (
	KindTruncated       = "truncated"
	KindVersion         = "version"
	KindLength          = "length"
	KindTemplate        = "template"
	KindTemplateLimit   = "template-limit"
	KindMissingTemplate = "missing-template"
	KindOther           = "other"
)

// ErrorKind names the kind of a decode error, for counting.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, wire.ErrTruncated):
		return KindTruncated
	case errors.Is(err, wire.ErrVersion):
		return KindVersion
	case errors.Is(err, wire.ErrLength):
		return KindLength
	case errors.Is(err, wire.ErrTemplateLimit):
		return KindTemplateLimit
	case errors.Is(err, wire.ErrTemplate):
		return KindTemplate
	case errors.Is(err, wire.ErrMissingTemplate):
		return KindMissingTemplate
	}
	return KindOther
}

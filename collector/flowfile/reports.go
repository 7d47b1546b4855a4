// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// ReportsAux is the name of the auxiliary section that keeps what
// exporters said about themselves in options records while the file was
// written: one ExporterReport per exporter and observation domain, JSON
// encoded (they are few and small).
const ReportsAux = "exporters/1"

// maxReportInterfaces bounds the interface names kept per exporter.
const maxReportInterfaces = 1 << 16

// ExporterReport is the last of what one exporter (address and
// observation domain) said about itself while a file was written:
// exporter statistics (IPFIX IEs 40-42, 160, 164, 165 and their NetFlow v9
// equivalents), interface names (IE 82) and sampling.
type ExporterReport struct {
	Addr   netip.Addr `json:"addr"`
	Domain uint32     `json:"observation_domain"`
	// Exporter statistics, totals since the exporter's counters started
	// (SystemInit, when it says): the last record received. HasStats is
	// false when none arrived.
	HasStats       bool      `json:"has_stats,omitempty"`
	SystemInit     time.Time `json:"system_init,omitzero"`
	Messages       uint64    `json:"messages,omitempty"`
	Records        uint64    `json:"records,omitempty"`
	Octets         uint64    `json:"octets,omitempty"`
	IgnoredPackets uint64    `json:"ignored_packets"`
	IgnoredOctets  uint64    `json:"ignored_octets"`
	// Received is when the last statistics record arrived.
	Received time.Time `json:"received,omitzero"`
	// Earlier are the last statistics of the exporter's earlier starts
	// while the file was written (it restarted: a new SystemInit), oldest
	// first, so that a restart within a file loses none of their totals.
	Earlier []StartStats `json:"earlier_starts,omitempty"`
	// Interfaces names interface indexes (the last name given for each).
	Interfaces map[uint32]string `json:"interfaces,omitempty"`
	// Sampling is the last sampling the domain announced: one packet out
	// of SamplingInterval (0: none announced), SamplingAlgorithm as
	// wire.Sampling's.
	SamplingInterval  uint32 `json:"sampling_interval,omitempty"`
	SamplingAlgorithm uint8  `json:"sampling_algorithm,omitempty"`
	// Samplers are the rates of the samplers (IE 48) and selectors (IE
	// 302) of the domain, by id, when the exporter scoped its sampling
	// records by them.
	Samplers map[uint64]uint32 `json:"samplers,omitempty"`
}

// StartStats are an exporter's statistics of one start (SystemInit):
// totals since then.
type StartStats struct {
	SystemInit     time.Time `json:"system_init"`
	Messages       uint64    `json:"messages,omitempty"`
	Records        uint64    `json:"records,omitempty"`
	Octets         uint64    `json:"octets,omitempty"`
	IgnoredPackets uint64    `json:"ignored_packets"`
	IgnoredOctets  uint64    `json:"ignored_octets"`
	Received       time.Time `json:"received,omitzero"`
}

// maxEarlierStarts bounds ExporterReport.Earlier: past it, the totals of
// the second and third oldest starts are added into one entry (the
// oldest may have begun in an earlier file and is kept apart; the others
// began and ended in this file, so no other file holds them).
const maxEarlierStarts = 64

// Stats returns the report's current statistics.
func (r *ExporterReport) Stats() StartStats {
	return StartStats{SystemInit: r.SystemInit, Messages: r.Messages, Records: r.Records, Octets: r.Octets,
		IgnoredPackets: r.IgnoredPackets, IgnoredOctets: r.IgnoredOctets, Received: r.Received}
}

// Add adds the totals of another start o; s keeps its SystemInit and
// takes the later Received.
func (s *StartStats) Add(o StartStats) {
	s.Messages += o.Messages
	s.Records += o.Records
	s.Octets += o.Octets
	s.IgnoredPackets += o.IgnoredPackets
	s.IgnoredOctets += o.IgnoredOctets
	if o.Received.After(s.Received) {
		s.Received = o.Received
	}
}

// SetStats sets the report's current statistics.
func (r *ExporterReport) SetStats(st StartStats) {
	r.HasStats, r.SystemInit, r.Received = true, st.SystemInit, st.Received
	r.Messages, r.Records, r.Octets = st.Messages, st.Records, st.Octets
	r.IgnoredPackets, r.IgnoredOctets = st.IgnoredPackets, st.IgnoredOctets
}

// Merge updates r with what a later report u of the same exporter said:
// its statistics replace r's (they are totals) unless they are of
// another start (both say when they started): then the older start's go
// to Earlier. Names are added.
func (r *ExporterReport) Merge(u *ExporterReport) {
	if u.HasStats {
		st := u.Stats()
		switch {
		case !r.HasStats || r.SystemInit.IsZero() || st.SystemInit.IsZero() || st.SystemInit.Equal(r.SystemInit):
			r.SetStats(st)
		case st.SystemInit.After(r.SystemInit):
			r.addEarlier(r.Stats())
			r.SetStats(st)
		default: // a late report of an earlier start
			r.addEarlier(st)
		}
	}
	for _, e := range u.Earlier {
		r.addEarlier(e)
	}
	for i, n := range u.Interfaces {
		if r.Interfaces == nil {
			r.Interfaces = make(map[uint32]string)
		}
		if _, ok := r.Interfaces[i]; ok || len(r.Interfaces) < maxReportInterfaces {
			r.Interfaces[i] = n
		}
	}
	if u.SamplingInterval != 0 {
		r.SamplingInterval, r.SamplingAlgorithm = u.SamplingInterval, u.SamplingAlgorithm
	}
	for id, rate := range u.Samplers {
		if r.Samplers == nil {
			r.Samplers = make(map[uint64]uint32)
		}
		if _, ok := r.Samplers[id]; ok || len(r.Samplers) < maxReportInterfaces {
			r.Samplers[id] = rate
		}
	}
}

// addEarlier keeps st as the last statistics of an earlier start.
func (r *ExporterReport) addEarlier(st StartStats) {
	i, found := slices.BinarySearchFunc(r.Earlier, st.SystemInit, func(e StartStats, t time.Time) int { return e.SystemInit.Compare(t) })
	if found {
		r.Earlier[i] = st
		return
	}
	r.Earlier = slices.Insert(r.Earlier, i, st)
	if len(r.Earlier) > maxEarlierStarts {
		r.Earlier[1].Add(r.Earlier[2])
		r.Earlier = slices.Delete(r.Earlier, 2, 3)
	}
}

type reportKey struct {
	addr   netip.Addr
	domain uint32
}

// reportTable is a file's reports while it is written.
type reportTable map[reportKey]*ExporterReport

func (t reportTable) add(u *ExporterReport) {
	k := reportKey{u.Addr, u.Domain}
	r := t[k]
	if r == nil {
		if len(t) >= maxSummaryExporters {
			return
		}
		r = &ExporterReport{Addr: u.Addr, Domain: u.Domain}
		t[k] = r
	}
	r.Merge(u)
}

// sorted returns the reports by address, then domain.
func (t reportTable) sorted() []ExporterReport {
	out := make([]ExporterReport, 0, len(t))
	for _, k := range slices.SortedFunc(maps.Keys(t), func(a, b reportKey) int {
		if c := a.addr.Compare(b.addr); c != 0 {
			return c
		}
		return cmp.Compare(a.domain, b.domain)
	}) {
		out = append(out, *t[k])
	}
	return out
}

// EncodeReports encodes reports as the ReportsAux section holds them.
func EncodeReports(reports []ExporterReport) ([]byte, error) {
	return json.Marshal(reports)
}

// DecodeReports decodes a ReportsAux section.
func DecodeReports(b []byte) ([]ExporterReport, error) {
	var out []ExporterReport
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: exporter reports: %v", ErrCorrupt, err)
	}
	return out, nil
}

// Report merges what an exporter said about itself into the file's
// reports, stored in the ReportsAux section when the file is closed.
func (w *Writer) Report(u *ExporterReport) error {
	if w.reports == nil {
		w.reports = make(reportTable)
	}
	w.reports.add(u)
	b, err := EncodeReports(w.reports.sorted())
	if err != nil {
		return err
	}
	w.SetAux(ReportsAux, b)
	return nil
}

// Reports returns the exporter reports a file closed cleanly carries
// (none for files of writers that received none, or cut short).
func (r *Reader) Reports() ([]ExporterReport, error) {
	p, ok, err := r.Aux(ReportsAux)
	if err != nil || !ok {
		return nil, err
	}
	return DecodeReports(p)
}

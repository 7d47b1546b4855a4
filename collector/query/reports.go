// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"slices"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// Reports returns what the exporters said about themselves in the flow
// files (kflow's files closed cleanly; nfdump files hold no such section),
// one report per exporter address and observation domain. Exporter
// statistics are totals since the exporter's counters started: of each
// start (SystemInit) the last report read counts, files being read oldest
// slot first, and the totals of successive starts (an exporter
// restarted) are added. So the ignored packets and octets are what the
// exporter had ignored by its last report in these files, whatever the
// window or filter selected of its records.
func Reports(files []File) []flowfile.ExporterReport {
	type key struct {
		r    reportID
		init int64
	}
	last := map[key]flowfile.ExporterReport{}
	merged := map[reportID]*flowfile.ExporterReport{}
	var order []reportID
	for _, f := range files {
		if format, err := FileFormat(f.Path); err != nil || format != FormatKflow {
			continue
		}
		r, err := flowfile.Open(f.Path, flowfile.ReaderOptions{})
		if err != nil {
			continue
		}
		reps, err := r.Reports()
		r.Close()
		if err != nil {
			continue
		}
		for _, rep := range reps {
			id := reportID{rep.Addr.String(), rep.Domain}
			m := merged[id]
			if m == nil {
				m = &flowfile.ExporterReport{Addr: rep.Addr, Domain: rep.Domain}
				merged[id] = m
				order = append(order, id)
			}
			stats := rep
			stats.Interfaces = nil
			m.Merge(&flowfile.ExporterReport{Interfaces: rep.Interfaces, SamplingInterval: rep.SamplingInterval, SamplingAlgorithm: rep.SamplingAlgorithm})
			if rep.HasStats {
				k := key{id, rep.SystemInit.UnixNano()}
				if rep.SystemInit.IsZero() {
					k.init = 0
				}
				last[k] = stats
			}
		}
	}
	for k, st := range last {
		m := merged[k.r]
		m.HasStats = true
		m.Messages += st.Messages
		m.Records += st.Records
		m.Octets += st.Octets
		m.IgnoredPackets += st.IgnoredPackets
		m.IgnoredOctets += st.IgnoredOctets
		if st.SystemInit.After(m.SystemInit) {
			m.SystemInit = st.SystemInit
		}
		if st.Received.After(m.Received) {
			m.Received = st.Received
		}
	}
	out := make([]flowfile.ExporterReport, 0, len(order))
	for _, id := range order {
		out = append(out, *merged[id])
	}
	slices.SortFunc(out, func(a, b flowfile.ExporterReport) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(a.Domain, b.Domain)
	})
	return out
}

type reportID struct {
	addr   string
	domain uint32
}

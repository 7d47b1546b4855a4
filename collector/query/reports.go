// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/nfdump"
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
	return mergeReports(readMetas(files), nil)
}

// readMetas reads the meta of each file, in order.
func readMetas(files []File) []fileMeta {
	metas := make([]fileMeta, len(files))
	for i, f := range files {
		metas[i] = readMeta(f.Path)
	}
	return metas
}

// mergeReports is Reports of the files whose metas are given; with
// idents, it also collects the files' distinct idents there, empty ones
// left out.
func mergeReports(metas []fileMeta, idents *[]string) []flowfile.ExporterReport {
	type key struct {
		r    reportID
		init int64
	}
	last := map[key]flowfile.StartStats{}
	merged := map[reportID]*flowfile.ExporterReport{}
	var order []reportID
	for _, meta := range metas {
		if idents != nil && meta.ident != "" && !slices.Contains(*idents, meta.ident) {
			*idents = append(*idents, meta.ident)
		}
		for _, rep := range meta.reports {
			id := reportID{rep.Addr.String(), rep.Domain}
			m := merged[id]
			if m == nil {
				m = &flowfile.ExporterReport{Addr: rep.Addr, Domain: rep.Domain}
				merged[id] = m
				order = append(order, id)
			}
			m.Merge(&flowfile.ExporterReport{Interfaces: rep.Interfaces, SamplingInterval: rep.SamplingInterval,
				SamplingAlgorithm: rep.SamplingAlgorithm, Samplers: rep.Samplers})
			// Each start's last statistics count: the file's earlier
			// starts, then its current one.
			for _, st := range rep.Earlier {
				last[key{id, st.SystemInit.UnixNano()}] = st
			}
			if rep.HasStats {
				k := key{id, rep.SystemInit.UnixNano()}
				if rep.SystemInit.IsZero() {
					k.init = 0
				}
				last[k] = rep.Stats()
			}
		}
	}
	for k, st := range last {
		m := merged[k.r]
		sum := m.Stats()
		sum.Add(st)
		if st.SystemInit.After(sum.SystemInit) {
			sum.SystemInit = st.SystemInit // the latest start
		}
		m.SetStats(sum)
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

// IfNames names interfaces from exporters' reports (IE 82): by exporter,
// observation domain and index, or by index alone over every exporter.
type IfNames struct {
	m     map[ifKey]string
	byIdx map[uint32][]string
}

type ifKey struct {
	addr   netip.Addr
	domain uint32
	idx    uint32
}

// NewIfNames indexes the interface names of reports.
func NewIfNames(reps []flowfile.ExporterReport) *IfNames {
	n := &IfNames{m: map[ifKey]string{}, byIdx: map[uint32][]string{}}
	for _, r := range reps {
		for idx, name := range r.Interfaces {
			n.m[ifKey{r.Addr, r.Domain, idx}] = name
			if !slices.Contains(n.byIdx[idx], name) {
				n.byIdx[idx] = append(n.byIdx[idx], name)
			}
		}
	}
	for _, names := range n.byIdx {
		slices.Sort(names)
	}
	return n
}

// Len is the number of names known.
func (n *IfNames) Len() int {
	if n == nil {
		return 0
	}
	return len(n.m)
}

// Name returns the name exporter (and domain) gave interface idx, "" when
// it gave none.
func (n *IfNames) Name(exporter netip.Addr, domain, idx uint32) string {
	if n == nil {
		return ""
	}
	return n.m[ifKey{exporter, domain, idx}]
}

// Index returns the names exporters gave interface idx, joined by '/'
// when they differ ("" when none gave one).
func (n *IfNames) Index(idx uint32) string {
	if n == nil {
		return ""
	}
	return strings.Join(n.byIdx[idx], "/")
}

// Interfaces returns the interface names of the files a request of window
// w reads.
func (b *FileBackend) Interfaces(w Window) (*IfNames, error) {
	files, err := Files(Select{Paths: b.Paths, Prefix: b.Prefix, Window: w, Slack: b.Slack})
	if err != nil {
		return nil, err
	}
	return NewIfNames(Reports(files)), nil
}

// fileMeta is what a file's header and closing sections say of it.
type fileMeta struct {
	ok      bool // the file could be opened
	ident   string
	reports []flowfile.ExporterReport
	// summary is the summary a kflow file closed cleanly stores.
	summary    flowfile.Summary
	hasSummary bool
}

// readMeta opens a flow file of either format once for its ident,
// exporter reports and stored summary (none in nfdump files, or in files
// not closed cleanly). A file that cannot be opened has no meta: reading
// its records says why.
func readMeta(path string) fileMeta {
	if r, err := flowfile.Open(path, flowfile.ReaderOptions{}); err == nil {
		defer r.Close()
		m := fileMeta{ok: true, ident: r.Header().Ident}
		m.reports, _ = r.Reports() // a damaged section: no reports
		m.summary, m.hasSummary = r.Summary()
		return m
	}
	r, err := nfdump.Open(path)
	if err != nil {
		return fileMeta{}
	}
	defer r.Close()
	return fileMeta{ok: true, ident: r.Header().Ident}
}

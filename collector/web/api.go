// SPDX-License-Identifier: Apache-2.0

package web

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
)

// The API: each handler reads its parameters into a query.Request, runs
// it (run) and writes the result's encoding from collector/query.

// errorBody is the body of every error response.
type errorBody struct {
	Error query.ErrorJSON `json:"error"`
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, filter.ErrSyntax), errors.Is(err, query.ErrRequest):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return 499 // the client went away: nobody reads this
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, nil, status, errorBody{query.NewErrorJSON(err)})
}

// writeJSON writes v, gzipped when the client accepts it. encoding/json
// escapes <, > and & in strings, so no value can read as markup.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	var out = any(w)
	if r != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		w.WriteHeader(status)
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		out = gz
	} else {
		w.WriteHeader(status)
	}
	_ = json.NewEncoder(out.(interface{ Write([]byte) (int, error) })).Encode(v)
}

// run asks the backend, bounded by the timeout, the client's context and
// the concurrency slots.
func (s *Server) run(r *http.Request, req *query.Request) (*query.Result, error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Limits.Timeout)
	defer cancel()
	select {
	case s.slots <- struct{}{}: // a free slot is taken at once
	default:
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	defer func() { <-s.slots }()
	return s.cfg.Backend.Query(ctx, req)
}

// answer runs req (unless p failed) and writes encode(result).
func (s *Server) answer(w http.ResponseWriter, r *http.Request, p *params, req *query.Request, encode func(*query.Result) any) {
	if p.err != nil {
		writeError(w, statusOf(p.err), p.err)
		return
	}
	res, err := s.run(r, req)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, r, http.StatusOK, encode(res))
}

func (s *Server) params(r *http.Request) *params { return &params{q: r.URL.Query(), s: s} }

// MetaJSON describes the server: version, clock, limits and the names the
// other endpoints accept.
type MetaJSON struct {
	API              string   `json:"api"`
	Version          string   `json:"version"`
	Now              string   `json:"now"`
	MaxWindowSeconds float64  `json:"max_window_seconds"`
	MaxRows          int      `json:"max_rows"`
	MaxLines         int      `json:"max_lines"`
	TimeoutSeconds   float64  `json:"timeout_seconds"`
	Dims             []string `json:"dims"`
	Units            []string `json:"units"`
	Ranks            []string `json:"ranks"`
	Orders           []string `json:"orders"`
}

func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	l := s.cfg.Limits
	writeJSON(w, r, http.StatusOK, MetaJSON{API: "v1", Version: s.cfg.Version, Now: s.cfg.Now().UTC().Format(time.RFC3339),
		MaxWindowSeconds: l.MaxWindow.Seconds(), MaxRows: l.MaxRows, MaxLines: l.MaxLines, TimeoutSeconds: l.Timeout.Seconds(),
		Dims: []string{"srcip", "dstip", "srcport", "dstport", "proto", "flags", "tos", "inif", "outif", "vlan", "exporter", "dir",
			"unit", "container", "pod", "cgroup"},
		Units: []string{"l3bps", "l2bps", "pps", "fps"}, Ranks: []string{"avg", "peak", "last"},
		Orders: []string{"tstart", "tend", "flows", "packets", "bytes", "pps", "bps", "bpp", "duration"}})
}

// summaryJSON is the summary with what the exporters said about
// themselves (ignored packets and octets, interface names), when the
// files kept it.
type summaryJSON struct {
	query.SummaryJSON
	Reports []flowfile.ExporterReport `json:"reports,omitempty"`
}

// summary: totals per protocol and per exporter (file query -I).
func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	p := s.params(r)
	req := &query.Request{Window: p.window(true), Filter: p.filter(), Summary: true}
	s.answer(w, r, p, req, func(res *query.Result) any {
		return summaryJSON{SummaryJSON: query.NewSummaryJSON(res.Summary), Reports: res.Reports}
	})
}

// stats: top-N tables (file query -s).
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	p := s.params(r)
	req := &query.Request{Window: p.window(false), Filter: p.filter(), Top: p.int("top", 10, 1, s.cfg.Limits.MaxRows)}
	for _, st := range p.q["stat"] {
		spec, err := query.ParseStat(st)
		if err != nil {
			p.fail("%v", err)
		}
		if spec.Element == query.ElemRecord {
			p.fail("stat %q: the record statistic is a listing: use /api/v1/flows", st)
		}
		req.Stats = append(req.Stats, spec)
	}
	if len(req.Stats) == 0 {
		p.fail("give at least one stat=ELEMENT[/ORDER]")
	}
	s.answer(w, r, p, req, func(res *query.Result) any { return query.NewStatsJSON(res) })
}

// series: traffic per time bucket for the top keys of some dimensions.
func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	p := s.params(r)
	req := &query.Request{Window: p.window(false), Filter: p.filter()}
	req.Series = p.seriesSpec(req.Window)
	s.answer(w, r, p, req, func(res *query.Result) any { return query.NewSeriesJSON(res.Series) })
}

// sankey: a series over 2 or 3 dimensions summed over the window.
func (s *Server) sankey(w http.ResponseWriter, r *http.Request) {
	p := s.params(r)
	req := &query.Request{Window: p.window(false), Filter: p.filter()}
	req.Series = p.seriesSpec(req.Window)
	if n := len(req.Series.Dims); p.err == nil && (n < 2 || n > query.MaxDims) {
		p.fail("a sankey needs 2 or 3 dims")
	}
	if req.Series.Reverse || req.Series.Previous != 0 {
		p.fail("a sankey has no reverse or previous period")
	}
	// Buckets do not matter (a sankey sums them): the fewest.
	req.Series.Step = max(req.Window.To.Sub(req.Window.From).Round(time.Second), time.Second)
	s.answer(w, r, p, req, func(res *query.Result) any { return query.NewSankeyJSON(res) })
}

// flows: the records (or bidirectional pairs), ordered and paged.
func (s *Server) flows(w http.ResponseWriter, r *http.Request) {
	p := s.params(r)
	l := s.cfg.Limits
	req := &query.Request{Window: p.window(false), Filter: p.filter(), Top: p.int("limit", 100, 1, l.MaxRows),
		Offset: p.int("offset", 0, 0, l.MaxOffset)}
	if o := p.q.Get("order"); o != "" {
		ord, ok := query.ParseOrder(o)
		if !ok {
			p.fail("order %q: want tstart, tend, flows, packets, bytes, pps, bps, bpp or duration", o)
		}
		req.Order, req.Ordered = ord, true
	}
	switch b := p.q.Get("bidir"); b {
	case "":
	case "b":
		req.Bidir = query.Paired
	case "B":
		req.Bidir = query.PairedGuess
	default:
		p.fail("bidir %q: want b (pair both directions) or B (and guess the server side)", b)
	}
	if req.Kind() == query.KindRecords && !req.Ordered {
		// Records in file order: stop reading one past the page.
		req.Limit = uint64(req.Offset + req.Top + 1)
	}
	s.answer(w, r, p, req, func(res *query.Result) any { return query.NewListJSON(req, res) })
}

// filter: checks a filter. A syntax error is an answer (200) that says
// where; a good filter comes back with its reverse.
func (s *Server) filter(w http.ResponseWriter, r *http.Request) {
	f, err := filter.Parse(r.URL.Query().Get("filter"))
	writeJSON(w, r, http.StatusOK, query.NewFilterJSON(f, err))
}

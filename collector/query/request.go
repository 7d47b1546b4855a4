// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Backend answers requests: the flow files (FileBackend) or a database.
// Every view (kflow file query, the web page and its API) builds a Request
// and renders the Result, so views cannot disagree.
type Backend interface {
	Query(ctx context.Context, req *Request) (*Result, error)
}

// Request is one question, in nfdump's terms. What it computes is, by
// precedence: a summary (-I), statistics (-s), a time series, or else a
// listing of records, aggregated with Aggregate or Bidir.
type Request struct {
	// Window selects records (nfdump's -t: starting at or after From and
	// ending at or before To) and, for files, the files by name.
	Window Window
	// Filter selects records (nil: all).
	Filter *filter.Filter
	// Limit ends the scan after that many records passed (nfdump's -c);
	// 0 for none.
	Limit uint64

	// Summary asks for totals per protocol and per exporter (nfdump's -I).
	Summary bool
	// Stats asks for top-N tables (nfdump's -s), Top entries each.
	Stats []StatSpec
	// Series asks for traffic per time bucket.
	Series *SeriesSpec

	// Aggregate groups the listed records by some fields (-A, -a).
	Aggregate *AggSpec
	// Bidir pairs both directions of a connection (-b, -B); it aggregates
	// by the five-tuple.
	Bidir Bidir
	// Ordered sorts the listing by Order (-O); otherwise records come in
	// file order and aggregated records in the order first seen.
	Ordered bool
	Order   Order

	// Top is the number of entries of each statistic, or of rows of a
	// listing (nfdump's -n); 0 for all.
	Top int
	// Offset skips that many rows of a listing before Top (paging).
	Offset int

	// Stream, when set for a listing of records that is not ordered,
	// receives each record as it is read (valid during the call) instead
	// of Result.Rows, Offset and Top; an error it returns ends the query
	// with that error. For a listing of aggregated records that is not
	// ordered, it receives the rows of the page Offset, Top instead of
	// Result.Rows, once all records are read.
	Stream func(*Row) error
}

// Kind is what a request computes.
type Kind uint8

// Kinds.
const (
	KindRecords    Kind = iota // a listing of records
	KindAggregates             // a listing of aggregated records
	KindStats
	KindSummary
	KindSeries
)

// Kind returns what the request computes.
func (q *Request) Kind() Kind {
	switch {
	case q.Summary:
		return KindSummary
	case len(q.Stats) > 0:
		return KindStats
	case q.Series != nil:
		return KindSeries
	case q.Aggregate != nil || q.Bidir != Unidirectional:
		return KindAggregates
	}
	return KindRecords
}

// ErrRequest marks a request that cannot be answered as given.
var ErrRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRequest, fmt.Sprintf(format, args...))
}

// Validate reports a request whose parts contradict each other.
func (q *Request) Validate() error {
	if q.Aggregate != nil && q.Bidir != Unidirectional {
		return badRequest("aggregation cannot be combined with bidirectional pairing (it pairs five-tuples)")
	}
	if q.Top < 0 || q.Offset < 0 {
		return badRequest("negative top or offset")
	}
	if k := q.Kind(); q.Stream != nil && k != KindRecords && k != KindAggregates {
		return badRequest("only a listing of records can be streamed")
	}
	if q.Stream != nil && q.Ordered {
		return badRequest("an ordered listing cannot be streamed")
	}
	if q.Series != nil {
		if err := q.Series.validate(q.Window); err != nil {
			return err
		}
	}
	return nil
}

// aggregator returns the aggregator a request needs (nil for none): for
// aggregated listings, and for the "record" statistic (by Aggregate, or
// the five-tuple, and Bidir).
func (q *Request) aggregator() *Aggregator {
	spec := q.Aggregate
	if spec == nil && q.Bidir != Unidirectional {
		ft := FiveTuple()
		spec = &ft
	}
	switch q.Kind() {
	case KindAggregates:
		return NewAggregator(*spec, q.Bidir)
	case KindStats:
		for _, s := range q.Stats {
			if s.Element != ElemRecord {
				continue
			}
			if spec == nil {
				return NewAggregator(FiveTuple(), Unidirectional)
			}
			return NewAggregator(*spec, q.Bidir)
		}
	}
	return nil
}

// Row is one row of a listing: a record, or an aggregated record whose
// key fields are set (the others zero) with the summed counters of its
// input direction, the span of both directions and the OR of TCP flags.
type Row struct {
	flow.Record
	// Flows is the number of records in the row (1 for a record).
	Flows uint64
	// OutPackets and OutBytes are the output direction of a pair (-b, -B).
	OutPackets, OutBytes uint64
}

// Counter returns the row's counters over both directions: what
// listings are ordered by.
func (w *Row) Counter() Counter {
	c := Counter{Flows: w.Flows, Packets: w.Packets + w.OutPackets, Bytes: w.Octets + w.OutBytes}
	if !w.Start.IsZero() {
		c.First = w.Start.UnixNano()
	}
	if !w.End.IsZero() {
		c.Last = w.End.UnixNano()
	}
	return c
}

// Result is a request's answer; which parts are set follows Kind.
type Result struct {
	Kind Kind
	// Rows of a listing (not set when streamed), after Offset and Top.
	Rows []Row
	// Matched is the number of rows before Offset and Top: records that
	// passed, or distinct aggregation keys.
	Matched int
	// Stats holds one table per statistic and order, in request order.
	Stats []StatTable
	// Summary of a KindSummary request. SequenceFailures and the
	// exporters' are known only from whole files (no filter, window or
	// limit).
	Summary *flowfile.Summary
	// Idents of a KindSummary request: the distinct idents of the files
	// read (the collectors' or sources' that wrote them; none for files
	// without one), sorted.
	Idents []string
	// Reports of a KindSummary request: what the exporters said about
	// themselves in the files read (see Reports).
	Reports []flowfile.ExporterReport
	// Series of a KindSeries request.
	Series *Series
	// Total counts the records that passed (every kind).
	Total Counter
	// Scan says what was read.
	Scan ScanStats
	// Elapsed is the time the backend took.
	Elapsed time.Duration
}

// StatTable is one statistic in one order: Top entries, or for the
// "record" statistic, Top aggregated records.
type StatTable struct {
	Element  Element
	Order    Order
	Distinct int // values (or aggregated records) counted
	Entries  []Entry
	Rows     []Row
}

// usesIdent reports whether the request tests or counts the ident of the
// records' files.
func (r *Request) usesIdent() bool {
	for _, s := range r.Stats {
		if s.Element == ElemIdent {
			return true
		}
	}
	return r.Filter != nil && exprUsesIdent(r.Filter.Expr())
}

func exprUsesIdent(e filter.Expr) bool {
	switch e := e.(type) {
	case filter.And:
		return exprUsesIdent(e.L) || exprUsesIdent(e.R)
	case filter.Or:
		return exprUsesIdent(e.L) || exprUsesIdent(e.R)
	case filter.Not:
		return exprUsesIdent(e.X)
	case filter.Ident:
		return true
	}
	return false
}

// countsInterfaces reports whether a statistic counts by interface.
func (r *Request) countsInterfaces() bool {
	for _, s := range r.Stats {
		if s.Element.IsInterface() {
			return true
		}
	}
	return false
}

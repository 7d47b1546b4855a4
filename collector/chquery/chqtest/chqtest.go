// SPDX-License-Identifier: Apache-2.0

// Package chqtest loads flow files into the test binary's shared
// ClickHouse server (chtest.Shared) through the shipper, for tests that
// ask the ClickHouse backend what they ask the file backend.
package chqtest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/collector/shipper"
)

// Load ships the flow files under dir (a collector's directory, any
// layout) into database db of the shared server, kept for ever, and
// returns the database's URL. The database is dropped when the test ends.
func Load(tb testing.TB, db, dir string) string {
	tb.Helper()
	url := chtest.Shared(tb).URL(db)
	ship(tb, dir, []string{url}, "", 0)
	return url
}

// LoadCluster starts two shards (chtest.StartCluster), ships the flow
// files under dir into them (small inserts, so both shards hold some)
// with Distributed tables over them, and returns the first shard's URL.
func LoadCluster(tb testing.TB, dir string) string {
	tb.Helper()
	shards := chtest.StartCluster(tb, "kflow_query")
	urls := []string{shards[0].URL("kflow"), shards[1].URL("kflow")}
	ship(tb, dir, urls, "kflow_query", 1000)
	return urls[0]
}

func ship(tb testing.TB, dir string, urls []string, cluster string, maxRows int) {
	tb.Helper()
	url := urls[0]
	c, err := clickhouse.NewClient(url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	db := c.Database()
	_ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	tb.Cleanup(func() { _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	s, err := shipper.New(shipper.Options{Dir: dir, State: filepath.Join(tb.TempDir(), "state"), URLs: urls, Cluster: cluster,
		MaxRows: maxRows, Location: time.UTC, Poll: 20 * time.Millisecond, MinRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond,
		Timeout: time.Minute, KflowVersion: "test",
		OnEvent: func(e shipper.Event) {
			if e.Err != nil {
				tb.Logf("shipper: %s %s: %v", e.Path, e.Detail, e.Err)
			}
		}})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- s.Run(rctx) }()
	s.Finish()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatal(err)
		}
	case <-time.After(5 * time.Minute): // a hang guard only
		tb.Fatalf("shipper did not finish: %+v", s.Stats())
	}
	if st := s.Stats(); st.Errors > 0 || st.Unrepresentable > 0 || st.CorruptBlocks > 0 {
		tb.Fatalf("shipping %s: %+v", dir, st)
	}
}

// Backend is Load's database as a query backend.
func Backend(tb testing.TB, db, dir string) *chquery.Backend {
	tb.Helper()
	b, err := chquery.Open(Load(tb, db, dir))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Encode is the JSON of what a result answers, in the encodings every
// view prints (collector/query's), without what depends on how the
// backend reads: what was read (ScanJSON), a summary's blocks when the
// request selects records (the file backend counts the blocks of the
// files it read, ClickHouse those the selected records came from) and,
// for a series, the span of its total (the file backend's rollups do
// not keep it).
func Encode(req *query.Request, res *query.Result) string {
	var v any
	switch res.Kind {
	case query.KindSummary:
		s := query.NewSummaryJSON(res.Summary)
		if req.Filter != nil && !req.Filter.MatchesAll() || !req.Window.IsZero() || req.Limit != 0 {
			s.Blocks = 0
		}
		v = struct {
			S query.SummaryJSON
			T query.CounterJSON
		}{s, query.NewCounterJSON(&res.Total)}
	case query.KindStats:
		s := query.NewStatsJSON(res)
		s.Scan = query.ScanJSON{}
		v = s
	case query.KindSeries:
		v = query.NewSeriesJSON(res.Series)
	default:
		v = struct {
			Rows    []query.RowJSON
			Matched int
			Total   query.CounterJSON
		}{query.RowsJSON(res.Rows), res.Matched, query.NewCounterJSON(&res.Total)}
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

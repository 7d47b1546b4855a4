// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkShip ships one million synthetic records, written as the
// collector writes them (32768-record blocks), to the shared test server
// in one insert (clickhouse.MaxInsertRows rows, gzip-compressed) or in
// eight of DefaultMaxRows (gzip-compressed, and uncompressed as auto
// compression sends them to a server on loopback). It reports rows per second (wall, the server's insert
// included) and the shipper's own CPU per row (reading and decoding
// blocks, RowBinary, gzip, HTTP); ClickHouse's CPU is its own process's.
//
//	go test ./collector/shipper -run XXX -bench Ship -benchtime 3x
func BenchmarkShip(b *testing.B) {
	for _, c := range []struct {
		name    string
		maxRows int
		comp    Compression
	}{
		{"one-insert/gzip", 1 << 20, CompressGzip},
		{"inserts-of-131072/gzip", 0, CompressGzip},
		{"inserts-of-131072/none", 0, CompressNone},
	} {
		b.Run(c.name, func(b *testing.B) { benchShip(b, c.maxRows, c.comp) })
	}
}

func benchShip(b *testing.B, maxRows int, comp Compression) {
	const n = 1 << 20
	srv := chtest.Shared(b)
	dir := b.TempDir()
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	r, err := flowfile.NewRotator(flowfile.RotatorOptions{Dir: dir, Interval: time.Hour, Location: time.UTC,
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	mix := synthflow.NewMix(synthflow.Options{Seed: 1, Exporter: netip.MustParseAddr("198.18.255.1"), Start: now.Add(-10 * time.Minute)})
	recs := mix.Records(n)
	if got := r.AppendAll(recs, nil); got != n {
		b.Fatalf("stored %d", got)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var wall, cpu time.Duration
	for i := 0; i < b.N; i++ {
		db := fmt.Sprintf("kflow_bench%d", i)
		opts := Options{Dir: dir, URLs: []string{srv.URL(db)}, Location: time.UTC, State: b.TempDir() + "/state", Poll: 10 * time.Millisecond,
			MaxRows: maxRows, Compression: comp}
		s, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.prepare(context.Background()); err != nil {
			b.Fatal(err)
		}
		began, c0 := time.Now(), cpuTime()
		s.Finish()
		if err := s.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(began)
		cpu += cpuTime() - c0
		if st := s.Stats(); st.Rows != n {
			b.Fatalf("shipped %d rows", st.Rows)
		}
		b.StopTimer()
		if c, err := clickhouse.NewClient(srv.URL(db), nil); err == nil {
			_ = c.Exec(context.Background(), "DROP DATABASE "+db)
		}
		b.StartTimer()
	}
	rows := float64(n) * float64(b.N)
	b.ReportMetric(rows/wall.Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/rows, "shipper-cpu-ns/row")
}

// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// seriesBenchDir writes n flows of the synthetic mix spread evenly over a
// day, in 288 five-minute files like a collector's (rollups included
// when rollups is set), and returns the directory and the day's start.
func seriesBenchDir(b *testing.B, n int, rollups bool) (string, time.Time) {
	b.Helper()
	day := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	dir := b.TempDir()
	m := synthflow.NewMix(synthflow.Options{Seed: 3, Exporter: netip.MustParseAddr("198.18.255.1"), Start: day})
	per := n / 288
	opts := flowfile.WriterOptions{Ident: "bench"}
	if rollups {
		opts.Aux = NewRollupBuilders
	}
	for f := 0; f < 288; f++ {
		slot := day.Add(time.Duration(f) * 5 * time.Minute)
		w, err := flowfile.Create(filepath.Join(dir, "kflow."+slot.Format("200601021504")), opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < per; i++ {
			r := m.Record()
			// Spread the mix's records over the file's five minutes.
			d := r.End.Sub(r.Start)
			r.End = slot.Add(time.Duration(int64(i) * int64(5*time.Minute) / int64(per)))
			r.Start = r.End.Add(-d)
			if err := w.Append(&r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return dir, day
}

func dirBytes(b *testing.B, dir string) int64 {
	var total int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		st, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		total += st.Size()
	}
	return total
}

// BenchmarkSeriesDay is the explorer's visualize query: a day in 5-minute
// buckets, the top 10 by source address (always scanned: addresses have
// no rollup) and by protocol, over KFLOW_BENCH_FLOWS flows (default
// 1,000,000), from the files' rollups and by scanning. It reports the
// rollups' cost on disk.
func BenchmarkSeriesDay(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("KFLOW_BENCH_FLOWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	dir, day := seriesBenchDir(b, n, true)
	bare, _ := seriesBenchDir(b, n, false)
	withBytes, bareBytes := dirBytes(b, dir), dirBytes(b, bare)
	flows := float64(n / 288 * 288)
	files, err := Files(Select{Paths: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	for _, dim := range []Element{ElemSrcIP, ElemProto} {
		req := &Request{Window: Window{From: day, To: day.Add(24*time.Hour - time.Nanosecond)},
			Series: &SeriesSpec{Step: 5 * time.Minute, Dims: []Dim{{Element: dim}}, Top: 10}}
		for _, mode := range []string{"rollups", "scan"} {
			b.Run(fmt.Sprintf("%s/%s/flows=%d", dim.Name(), mode, n), func(b *testing.B) {
				for b.Loop() {
					res := &Result{}
					e := &engine{req: req, sc: &Scanner{Window: req.Window}, files: files, noRollups: mode == "scan"}
					if err := e.series(context.Background(), res); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(res.Scan.Rollups), "files-from-rollups")
				}
				b.ReportMetric(float64(withBytes)/flows, "file-bytes/flow")
				b.ReportMetric(float64(withBytes-bareBytes)/flows, "rollup-bytes/flow")
			})
		}
	}
}

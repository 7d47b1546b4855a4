// SPDX-License-Identifier: Apache-2.0

package query

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// TestReportsAcrossRestarts: an exporter's statistics are totals since
// its start; a start whose reports span files counts once (its last
// report), and a restart in the middle of a file keeps the totals of the
// start before it.
func TestReportsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	exp := netip.MustParseAddr("198.18.0.1")
	a, b := t0.Add(-time.Hour), t0.Add(7*time.Minute)
	report := func(init time.Time, ignored uint64) *flowfile.ExporterReport {
		return &flowfile.ExporterReport{Addr: exp, Domain: 1, HasStats: true, SystemInit: init, Records: ignored, IgnoredPackets: ignored}
	}
	// Start a reports 5 in the first file, 8 (its last) in the second,
	// where start b follows with 2, then 4 in the third file.
	per := [][]*flowfile.ExporterReport{
		{report(a, 3), report(a, 5)},
		{report(a, 8), report(b, 2)},
		{report(b, 4)},
	}
	var files []File
	for i, reps := range per {
		path := filepath.Join(dir, "kflow.20250314090"+string(rune('0'+5*i)))
		w, err := flowfile.Create(path, flowfile.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reps {
			if err := w.Report(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Path: path})
	}
	got := Reports(files)
	if len(got) != 1 {
		t.Fatalf("reports %+v", got)
	}
	if r := got[0]; r.IgnoredPackets != 8+4 || r.Records != 8+4 || !r.SystemInit.Equal(b) {
		t.Errorf("merged %+v: want 12 ignored packets over starts a and b, the latest b", r)
	}
}

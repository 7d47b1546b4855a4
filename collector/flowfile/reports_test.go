// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"net/netip"
	"testing"
	"time"
)

func statsReport(init time.Time, ignored uint64) *ExporterReport {
	return &ExporterReport{Addr: netip.MustParseAddr("198.18.0.1"), Domain: 3, HasStats: true,
		SystemInit: init, Records: 10 * ignored, IgnoredPackets: ignored, IgnoredOctets: 100 * ignored}
}

// TestReportRestarts: an exporter restarting while a file is written
// leaves the last statistics of each start, whatever the order its
// reports arrive in; reports that do not say when their counters started
// replace each other as before.
func TestReportRestarts(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var r ExporterReport
	r.Merge(statsReport(t0, 1))
	r.Merge(statsReport(t0, 5)) // the same start: totals replace
	r.Merge(statsReport(t0.Add(time.Minute), 2))
	r.Merge(statsReport(t0.Add(2*time.Minute), 7))
	r.Merge(statsReport(t0.Add(time.Minute), 3)) // late, of the second start
	if r.SystemInit != t0.Add(2*time.Minute) || r.IgnoredPackets != 7 {
		t.Errorf("current %v %d, want the third start with 7", r.SystemInit, r.IgnoredPackets)
	}
	want := []struct {
		init    time.Time
		ignored uint64
	}{{t0, 5}, {t0.Add(time.Minute), 3}}
	if len(r.Earlier) != len(want) {
		t.Fatalf("earlier starts %+v, want %d", r.Earlier, len(want))
	}
	for i, w := range want {
		if e := r.Earlier[i]; !e.SystemInit.Equal(w.init) || e.IgnoredPackets != w.ignored || e.Records != 10*w.ignored {
			t.Errorf("earlier %d: %+v, want start %v with %d", i, e, w.init, w.ignored)
		}
	}
	// The section keeps them.
	b, err := EncodeReports([]ExporterReport{r})
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeReports(b)
	if err != nil || len(back) != 1 || len(back[0].Earlier) != 2 || back[0].Earlier[1].IgnoredOctets != 300 {
		t.Errorf("decoded %+v, %v", back, err)
	}

	var z ExporterReport
	z.Merge(statsReport(time.Time{}, 4))
	z.Merge(statsReport(time.Time{}, 6))
	if z.IgnoredPackets != 6 || len(z.Earlier) != 0 {
		t.Errorf("without start times: %+v", z)
	}
}

// TestReportRestartsBounded: past maxEarlierStarts, starts that began and
// ended in the file are added together; the oldest (which may have begun
// in an earlier file) stays apart, and no total is lost.
func TestReportRestartsBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var r ExporterReport
	var sum uint64
	const starts = maxEarlierStarts + 10
	for i := range starts {
		r.Merge(statsReport(t0.Add(time.Duration(i)*time.Second), uint64(i+1)))
		sum += uint64(i + 1)
	}
	if len(r.Earlier) != maxEarlierStarts {
		t.Fatalf("%d earlier starts kept, want %d", len(r.Earlier), maxEarlierStarts)
	}
	if e := r.Earlier[0]; !e.SystemInit.Equal(t0) || e.IgnoredPackets != 1 {
		t.Errorf("oldest start %+v, want the first alone", e)
	}
	got := r.IgnoredPackets
	for _, e := range r.Earlier {
		got += e.IgnoredPackets
	}
	if got != sum {
		t.Errorf("ignored packets over the starts %d, want %d", got, sum)
	}
}

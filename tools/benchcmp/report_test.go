// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeReport is a small run: a baseline and kflow under both loads, one
// collector and one query, with a missed CPU target.
func fakeReport() *Report {
	load := func(rate float64, sys time.Duration) map[string]LoadMetrics {
		return map[string]LoadMetrics{
			phaseXDPGen:  {Packets: 1_000_000, Rate: rate, SysBusy: sys},
			phaseTrafgen: {Packets: 1_000_000, Rate: rate / 5, SysBusy: sys},
		}
	}
	exact := map[string]Match{phaseMix: {Flows: 3, ExactFlows: 3}, phaseTrafgen: {}, phaseXDPGen: {}}
	return &Report{
		Config:    &Config{Kflow: "/nonexistent/kflow", Runs: 1, MixTruth: Truth{}, TrafgenN: 1_000_000, XDPGenN: 1_000_000},
		Command:   "bin/benchcmp -runs 1",
		LoadStart: "0.1 0.1 0.1", LoadEnd: "0.2 0.2 0.2",
		Rows: []RowRun{
			{Probe: baselineName, Match: exact, Loads: load(2e6, 400*time.Millisecond)},
			{Probe: "kflow (TCX)", Match: exact, Loads: load(1.8e6, 500*time.Millisecond)},
			{Probe: "softflowd", Match: exact, Loads: load(1.3e6, 900*time.Millisecond)},
		},
		Collectors: []CollectorRun{{Name: "kflow collector", Sent: 1000, Stored: 1000, CPU: time.Millisecond, DiskBytes: 19000}},
		Queries: []QueryRun{
			{Task: "top 10", Tool: "nfdump", Wall: 100 * time.Millisecond},
			{Task: "top 10", Tool: "kflow", Wall: 150 * time.Millisecond},
		},
	}
}

// TestReportStatesOnlyMeasurements: the generated region holds figures,
// tables and verdicts, never reasons (they are written by hand), and
// splices into the page without touching the hand-written text.
func TestReportStatesOnlyMeasurements(t *testing.T) {
	md := fakeReport().Markdown()
	if !strings.Contains(md, "**missed**") {
		t.Fatalf("the fake run misses no target; the test proves nothing:\n%s", md)
	}
	for _, prose := range []string{"would close", "Why", "because", "per-CPU", "--map-values", "in parallel", "profile"} {
		if strings.Contains(md, prose) {
			t.Errorf("generated text says %q: reasons belong outside the generated region", prose)
		}
	}
	page := "hand-written top\n" + beginGenerated + "\nold tables\n" + endGenerated + "\nhand-written reasons\n"
	got, err := splice(page, md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "hand-written top\n"+beginGenerated+"\n\n"+md) || !strings.HasSuffix(got, endGenerated+"\nhand-written reasons\n") ||
		strings.Contains(got, "old tables") {
		t.Errorf("spliced page:\n%s", got)
	}
	if _, err := splice("no markers", md); err == nil {
		t.Error("a page without the markers was accepted")
	}
}

// TestReportWithoutXDPGen: a run whose kernel refused the xdpgen load
// says why in place of its table, shows no xdpgen figures, and ranks CPU
// per packet under the trafgen load instead.
func TestReportWithoutXDPGen(t *testing.T) {
	r := fakeReport()
	r.Config.XDPGenN, r.Config.XDPGenSkipped = 0, "the kernel refused a live-frame test run: operation not permitted"
	for i := range r.Rows {
		delete(r.Rows[i].Loads, phaseXDPGen)
		delete(r.Rows[i].Match, phaseXDPGen)
	}
	md := r.Markdown()
	for _, want := range []string{
		"| xdpgen load | left out: the kernel refused a live-frame test run: operation not permitted |",
		"## Cost under the xdpgen load\n\nLeft out of this run: the kernel refused",
		"| kflow (TCX) | 3 of 3 | 0 | 0 | 0 | — | 1 of 1 |",
		"per packet ≥ 20× below the best libpcap probe's (among the probes that lost nothing), trafgen load |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "xdpgen load |") && strings.Contains(md, "≥ 20× below the best libpcap probe's (among the probes that lost nothing), xdpgen load") {
		t.Errorf("a target is judged under the xdpgen load that did not run:\n%s", md)
	}
}

// TestBenchmarksPageLayout: docs/benchmarks.md has one generated region
// whose sections are the ones the generator writes, in its order, so the
// next run replaces exactly them.
func TestBenchmarksPageLayout(t *testing.T) {
	b, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if strings.Count(page, beginGenerated) != 1 || strings.Count(page, endGenerated) != 1 {
		t.Fatal("docs/benchmarks.md needs exactly one generated region")
	}
	region := page[strings.Index(page, beginGenerated):strings.Index(page, endGenerated)]
	// Section headings and table header rows (the row above "| --- |").
	shape := regexp.MustCompile(`(?m)^## .*$|^\|.*\|\n\| --- `)
	got := shape.FindAllString(region, -1)
	fake := fakeReport()
	if strings.Contains(region, "| xdpgen load | left out: ") {
		// A run on a kernel that refused the xdpgen load.
		fake.Config.XDPGenN, fake.Config.XDPGenSkipped = 0, "refused"
	}
	want := shape.FindAllString(fake.Markdown(), -1)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("generated region's sections and tables:\n%s\nthe generator writes:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// SPDX-License-Identifier: Apache-2.0

package web

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/nfdump"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestSummaryReports: the summary carries what exporters said about
// themselves (the exporter health of the home page): ignored packets and
// octets, interface names, from the files' exporters/1 sections.
func TestSummaryReports(t *testing.T) {
	dir := t.TempDir()
	exp := netip.MustParseAddr("198.18.255.1")
	w, err := flowfile.Create(filepath.Join(dir, "kflow.202503140900"), flowfile.WriterOptions{Created: fixtureStart})
	if err != nil {
		t.Fatal(err)
	}
	rec := flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: flow.ProtoUDP,
		Packets: 3, Octets: 300, Start: fixtureStart.Add(time.Minute), End: fixtureStart.Add(time.Minute), Exporter: exp}
	if err := w.Append(&rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Report(&flowfile.ExporterReport{Addr: exp, HasStats: true, IgnoredPackets: 7, IgnoredOctets: 700,
		Interfaces: map[uint32]string{2: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, dir, Config{})
	resp := get(t, s, "/api/v1/summary?from=2025-03-14T08:00:00Z&to=2025-03-14T10:00:00Z")
	var got struct {
		Exporters []struct{ Addr string }
		Reports   []flowfile.ExporterReport
	}
	if err := json.Unmarshal(resp.Body.Bytes(), &got); err != nil || len(got.Exporters) != 1 || len(got.Reports) != 1 {
		t.Fatalf("summary: %v: %s", err, resp.Body.String())
	}
	r := got.Reports[0]
	if r.Addr != exp || r.IgnoredPackets != 7 || r.IgnoredOctets != 700 || r.Interfaces[2] != "eth0" {
		t.Errorf("report %+v", r)
	}
}

// TestNfcapdFiles: kflow web -R reads nfcapd's files next to kflow's: the
// summary of a tree holding both is the sum of each file's records.
func TestNfcapdFiles(t *testing.T) {
	dir, _ := fixture(t)
	src, err := os.ReadFile("../nfdump/testdata/nfcapd-1.7.1-lz4")
	if err != nil {
		t.Fatal(err)
	}
	nf := filepath.Join(dir, "nfcapd", "nfcapd.202503140900")
	if err := os.MkdirAll(filepath.Dir(nf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nf, src, 0o644); err != nil {
		t.Fatal(err)
	}
	var want uint64
	if _, err := nfdump.Scan(nf, nfdump.ScanOptions{}, func(recs []flow.Record) error { want += uint64(len(recs)); return nil }); err != nil || want == 0 {
		t.Fatalf("nfcapd's file: %d records, %v", want, err)
	}
	summary := func(d string) uint64 {
		t.Helper()
		resp := get(t, newServer(t, d, Config{}), "/api/v1/summary")
		var got struct{ Total struct{ Flows uint64 } }
		if err := json.Unmarshal(resp.Body.Bytes(), &got); err != nil {
			t.Fatalf("summary: %v: %s", err, resp.Body.String())
		}
		return got.Total.Flows
	}
	all, own := summary(dir), summary(filepath.Dir(nf))
	if own != want {
		t.Errorf("nfcapd's file alone: %d flows, want %d", own, want)
	}
	if err := os.Remove(nf); err != nil {
		t.Fatal(err)
	}
	if kflowOnly := summary(dir); all != kflowOnly+want {
		t.Errorf("tree: %d flows, kflow's files %d + nfcapd's %d", all, kflowOnly, want)
	}
}

// TestSeriesInterfaceNames: the lines of an interface dimension are named
// as the exporters named the interfaces; their keys stay numbers.
func TestSeriesInterfaceNames(t *testing.T) {
	dir := t.TempDir()
	exp := netip.MustParseAddr("198.18.255.1")
	w, err := flowfile.Create(filepath.Join(dir, "kflow.202503140900"), flowfile.WriterOptions{Created: fixtureStart})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []uint32{2, 3, 4} {
		rec := flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: flow.ProtoUDP,
			Packets: 3, Octets: 300, Start: fixtureStart.Add(time.Minute), End: fixtureStart.Add(time.Minute), Exporter: exp, InIf: in}
		if err := w.Append(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Report(&flowfile.ExporterReport{Addr: exp, Interfaces: map[uint32]string{2: "eth0", 3: "eth1"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	resp := get(t, newServer(t, dir, Config{}), "/api/v1/series?from=2025-03-14T08:00:00Z&to=2025-03-14T10:00:00Z&dims=inif")
	var got struct {
		Lines []struct {
			Name string
			Key  []string
		}
	}
	if err := json.Unmarshal(resp.Body.Bytes(), &got); err != nil {
		t.Fatalf("series: %v: %s", err, resp.Body.String())
	}
	names := map[string]string{}
	for _, l := range got.Lines {
		names[strings.Join(l.Key, ",")] = l.Name
	}
	if names["2"] != "eth0" || names["3"] != "eth1" || names["4"] != "4" {
		t.Errorf("lines %+v", got.Lines)
	}
}

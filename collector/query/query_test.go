// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

func TestParseWindow(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		in       string
		from, to string // RFC 3339, "" for open
	}{
		{"2025/03/14", "2025-03-14T00:00:00Z", ""},
		{"2025/03/14.09:30", "2025-03-14T09:30:00Z", ""},
		{"2025/03/14.09:30:05-2025/03/14.10", "2025-03-14T09:30:05Z", "2025-03-14T10:59:59.999999999Z"},
		{"2025/03/14-2025/03/15", "2025-03-14T00:00:00Z", "2025-03-15T23:59:59.999999999Z"},
		{"2025-03-14T09:00:00Z-2025-03-14T10:00:00+01:00", "2025-03-14T09:00:00Z", "2025-03-14T09:00:00Z"},
		{"2025-03-14T09:00:00-07:00", "2025-03-14T16:00:00Z", ""},
	} {
		w, err := ParseWindow(tt.in, utc)
		if err != nil {
			t.Errorf("ParseWindow(%q): %v", tt.in, err)
			continue
		}
		if !w.From.Equal(at(tt.from)) {
			t.Errorf("ParseWindow(%q).From = %v, want %s", tt.in, w.From, tt.from)
		}
		if tt.to == "" && !w.To.IsZero() || tt.to != "" && !w.To.Equal(at(tt.to)) {
			t.Errorf("ParseWindow(%q).To = %v, want %q", tt.in, w.To, tt.to)
		}
	}
	for _, bad := range []string{"", "2025/13/01", "yesterday", "2025/03/14.25", "2025/03/15-2025/03/14"} {
		if _, err := ParseWindow(bad, utc); err == nil {
			t.Errorf("ParseWindow(%q) succeeded", bad)
		}
	}
}

func rec(src, dst string, sport, dport uint16, proto uint8, packets, octets uint64, start time.Time, dur time.Duration) flow.Record {
	return flow.Record{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport,
		Proto: proto, Packets: packets, Octets: octets, Start: start, End: start.Add(dur)}
}

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

func writeFile(t testing.TB, path string, recs []flow.Record) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := flowfile.Create(path, flowfile.WriterOptions{Ident: "test", Aux: NewRollupBuilders})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFilesWindow: a window selects files by name before any is opened
// (the files outside it are not even flow files here).
func TestFilesWindow(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"2025/03/14/kflow.202503140900", "2025/03/14/kflow.202503140905", "2025/03/14/kflow.202503141000",
		"2025/03/15/kflow.202503150000", "2025/03/14/kflow.current.202503141005", "2025/03/14/other.202503140900"} {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	all, err := Files(Select{Paths: []string{dir}})
	if err != nil || len(all) != 5 {
		t.Fatalf("Files: %v %v", all, err)
	}
	w, _ := ParseWindow("2025/03/14.09:30-2025/03/14.10:04", time.UTC)
	got, err := Files(Select{Paths: []string{dir}, Window: w, Slack: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, filepath.Base(f.Path))
	}
	if len(names) != 2 || names[0] != "kflow.202503141000" || names[1] != "kflow.current.202503141005" {
		t.Errorf("window selected %v", names)
	}
}

func TestScanStatAggregate(t *testing.T) {
	dir := t.TempDir()
	recs := []flow.Record{
		rec("198.18.0.1", "198.19.0.1", 40000, 443, flow.ProtoTCP, 10, 10000, t0, time.Second),
		rec("198.19.0.1", "198.18.0.1", 443, 40000, flow.ProtoTCP, 20, 30000, t0, 2*time.Second),
		rec("198.18.0.2", "198.18.0.53", 50000, 53, flow.ProtoUDP, 1, 80, t0.Add(time.Minute), 0),
		rec("198.18.0.53", "198.18.0.2", 53, 50000, flow.ProtoUDP, 1, 120, t0.Add(time.Minute), 0),
		rec("198.18.1.2", "198.18.0.53", 50001, 53, flow.ProtoUDP, 1, 70, t0.Add(2*time.Minute), 0),
	}
	writeFile(t, filepath.Join(dir, "kflow.202503140900"), recs)
	files, err := Files(Select{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	src := NewStat(StatSpec{Element: ElemSrcIP, Orders: []Order{ByBytes}})
	port := NewStat(StatSpec{Element: ElemPort, Orders: []Order{ByFlows}})
	agg := NewAggregator(AggSpec{SrcIP: true, SrcBits4: 24, SrcBits6: -1, DstBits4: -1, DstBits6: -1}, Unidirectional)
	bi := NewAggregator(FiveTuple(), PairedGuess)
	sum := flowfile.NewSummarizer()
	sc := &Scanner{Filter: filter.MustParse("not port 443 or bytes > 15000")}
	st, err := sc.Scan(context.Background(), files, func(r *flow.Record) error {
		src.Add(r)
		port.Add(r)
		agg.Add(r)
		bi.Add(r)
		sum.Add(r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 5 || st.Passed != 4 || st.Files != 1 {
		t.Errorf("scan stats %+v", st)
	}
	top := src.Top(ByBytes, 2)
	if len(top) != 2 || top[0].Value.Addr != netip.MustParseAddr("198.19.0.1") || top[0].Bytes != 30000 ||
		top[1].Value.Addr != netip.MustParseAddr("198.18.0.53") {
		t.Errorf("top srcip by bytes: %+v", top)
	}
	if top := port.Top(ByFlows, 1); top[0].Value.Num != 53 || top[0].Flows != 3 {
		t.Errorf("top port: %+v", top)
	}
	if sum := sum.Summary(); sum.Total.Flows != 4 || sum.UDP.Flows != 3 || sum.TCP.Octets != 30000 {
		t.Errorf("summary %+v", sum)
	}
	// -A srcip4/24: 198.19.0.0, 198.18.0.0 (two flows), 198.18.1.0.
	if got := agg.Records(); len(got) != 3 || got[1].Src != netip.MustParseAddr("198.18.0.0") || got[1].Flows != 2 {
		t.Errorf("aggregated: %d records, second %+v", len(got), got[1])
	}
	// -B: the reply is turned round: client 198.19.0.1:443 is the server.
	bis := bi.Records()
	if len(bis) != 3 {
		t.Fatalf("bidirectional: %d records", len(bis))
	}
	if r := bis[0]; r.Src != netip.MustParseAddr("198.18.0.1") || r.DstPort != 443 || r.OutBytes != 30000 || r.Octets != 0 {
		t.Errorf("bidirectional TCP: %+v", r)
	}
	if r := bis[1]; r.SrcPort != 50000 || r.DstPort != 53 || r.Octets != 80 || r.OutBytes != 120 || r.Flows != 2 {
		t.Errorf("bidirectional DNS: %+v", r)
	}
	// A limit stops the scan.
	sc = &Scanner{Limit: 2}
	if st, _ := sc.Scan(context.Background(), files, func(*flow.Record) error { return nil }); st.Passed != 2 {
		t.Errorf("limit: %+v", st)
	}
	// A window filters records.
	w, _ := ParseWindow("2025/03/14.09:01-2025/03/14.09:01", time.UTC)
	sc = &Scanner{Window: w}
	if st, _ := sc.Scan(context.Background(), files, func(*flow.Record) error { return nil }); st.Passed != 2 {
		t.Errorf("window: %+v", st)
	}
}

func TestParseSpecs(t *testing.T) {
	if s, err := ParseStat("ip/flows/bytes"); err != nil || s.Element != ElemIP || len(s.Orders) != 2 || s.Orders[1] != ByBytes {
		t.Errorf("ParseStat: %+v %v", s, err)
	}
	for _, bad := range []string{"bogus", "srcip/sideways", "srcip/tstart"} {
		if _, err := ParseStat(bad); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
	a, err := ParseAggSpec("srcip4/24,dstip6/64,proto,dstport")
	if err != nil || !a.SrcIP || a.SrcBits4 != 24 || a.SrcBits6 != -1 || a.DstBits6 != 64 || !a.Proto || !a.DstPort || a.SrcPort {
		t.Errorf("ParseAggSpec: %+v %v", a, err)
	}
	for _, bad := range []string{"srcip4/33", "dstip6/129", "srcip/24", "mac", "srcip4/x"} {
		if _, err := ParseAggSpec(bad); err == nil {
			t.Errorf("ParseAggSpec(%q) succeeded", bad)
		}
	}
}

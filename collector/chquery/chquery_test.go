// SPDX-License-Identifier: Apache-2.0

package chquery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/chquery/chqtest"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/synthflow/synthdir"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chtest.StopShared()
	os.Exit(code)
}

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// edgeRecords are records whose fields exercise every filter primitive
// and the address families: IPv4, IPv6, an IPv4-mapped address in an
// IPv6 record, ICMP and ICMPv6 with and without a port, no exporter, no
// end, nanosecond times, counters past 32 bits.
func edgeRecords() []flow.Record {
	a := netip.MustParseAddr
	exp := a("198.18.255.1")
	r := func(src, dst string, sp, dp uint16, proto uint8, pk, by uint64, startMs, durMs int) flow.Record {
		s := t0.Add(time.Duration(startMs) * time.Millisecond)
		return flow.Record{Src: a(src), Dst: a(dst), SrcPort: sp, DstPort: dp, Proto: proto, Packets: pk, Octets: by,
			Start: s, End: s.Add(time.Duration(durMs) * time.Millisecond), InIf: 2, OutIf: 3, Exporter: exp}
	}
	recs := []flow.Record{
		r("198.18.0.10", "198.19.5.1", 40000, 443, flow.ProtoTCP, 12, 1800, 0, 2500),
		r("198.19.5.1", "198.18.0.10", 443, 40000, flow.ProtoTCP, 20, 6_000_000_000, 10, 2480),
		r("fd00::10", "fd00::53", 50001, 53, flow.ProtoUDP, 1, 91, 200, 1),
		r("::ffff:198.19.5.1", "fd00::53", 53, 53, flow.ProtoUDP, 3, 300, 250, 7),
		r("198.18.0.11", "198.18.0.1", 0, 0, flow.ProtoICMP, 4, 336, 300, 3000),
		r("198.18.0.11", "198.18.0.1", 0, 771, flow.ProtoICMP, 1, 56, 310, 0),
		r("fd00::1", "fd00::2", 0, 0, flow.ProtoICMPv6, 2, 128, 320, 5),
		r("198.19.9.9", "198.18.0.10", 12345, 22, flow.ProtoTCP, 1, 60, 400, 0),
		r("198.18.0.12", "198.19.7.7", 0, 0, 47, 300, 420_000, 500, 60_000),
		r("198.18.0.13", "198.19.7.8", 1000, 2000, flow.ProtoUDP, 5, 5000, 600, 999),
		r("::", "fd00::53", 1, 2, flow.ProtoUDP, 1, 40, 700, 0),
		r("198.18.0.14", "198.19.7.9", 1001, 2001, flow.ProtoUDP, 2, 200, 4000, 1000), // ends on a whole second
	}
	recs[0].TCPFlags = flow.TCPSyn | flow.TCPAck | flow.TCPFin
	recs[1].TCPFlags = flow.TCPSyn | flow.TCPAck | flow.TCPPsh
	recs[1].Direction = flow.Egress
	recs[3].Direction = flow.Egress
	recs[4].ICMPType = 8
	recs[5].ICMPType, recs[5].ICMPCode = 3, 3
	recs[6].ICMPType = 128
	recs[7].TCPFlags = flow.TCPSyn
	recs[8].TOS, recs[8].VLAN = 0xb8, 7
	recs[8].SrcAS, recs[8].DstAS, recs[8].SrcMask, recs[8].DstMask = 64500, 64501, 24, 16
	recs[8].NextHop = a("198.18.0.1")
	recs[9].Exporter = netip.Addr{}
	recs[9].ObservationDomain = 7
	recs[10].ObservationDomain = 0x0102 // NetFlow v5 engine type 1, id 2
	recs[9].InIf, recs[9].OutIf = 5, 5
	recs[9].Start = recs[9].Start.Add(123456 * time.Nanosecond)
	recs[10].End = time.Time{}
	return recs
}

const (
	testContainer = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPod       = "01234567-89ab-cdef-0123-456789abcdef"
)

// testCgroups are the cgroups the synthetic records take in turn: none,
// the root, each layout flow.ParseCgroup knows, and paths it does not.
var testCgroups = []string{
	"", "/system.slice/nginx.service", "/", "/system.slice/docker-" + testContainer + ".scope",
	"/kubepods/burstable/pod" + testPod + "/" + testContainer,
	"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(testPod, "-", "_") + ".slice/cri-containerd-" + "f" + testContainer[1:] + ".scope",
	"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope", "/kflow-test/a", "/kflow-test/a/b", "/kflow-testx",
	"/kflow-test/quote'back\\slash;--", "",
}

// fixture writes the edge records and a synthetic mix (two exporters,
// an hour) as flow files and ships them into ClickHouse.
func fixture(t *testing.T, db string) (files *query.FileBackend, ch *chquery.Backend) {
	t.Helper()
	files, dir := fixtureFiles(t)
	return files, chqtest.Backend(t, db, dir)
}

// fixtureFiles writes the edge records and a synthetic mix (two
// exporters, an hour) as flow files.
func fixtureFiles(t *testing.T) (*query.FileBackend, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synthdir.Write(dir, synthdir.Options{Seed: 7, Start: t0, Span: time.Hour, Flows: 3000,
		Exporters: []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("fd00::ff")}, Wave: 0.5,
		Cgroups: testCgroups}, false); err != nil {
		t.Fatal(err)
	}
	w, err := flowfile.Create(filepath.Join(dir, "kflow.202503140855"), flowfile.WriterOptions{Ident: "edge", Created: t0.Add(-5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	recs := edgeRecords()
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &query.FileBackend{Paths: []string{dir}}, dir
}

// sortedRows is a listing's rows as JSON lines, sorted: the records a
// filter selects, whatever their order.
func sortedRows(res *query.Result) string {
	var lines []string
	for _, r := range query.RowsJSON(res.Rows) {
		b := chqtestLine(r)
		lines = append(lines, b)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestFilters: every filter primitive selects the same records in
// ClickHouse as in the files.
func TestFilters(t *testing.T) {
	files, ch := fixture(t, "kflow_chq_filters")
	ctx := context.Background()
	for _, src := range filterCases {
		f, err := filter.Parse(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		for _, x := range []*filter.Filter{f, f.Reverse()} {
			req := &query.Request{Filter: x}
			want, err := files.Query(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ch.Query(ctx, req)
			if err != nil {
				t.Errorf("%q: %v", x, err)
				continue
			}
			if g, w := sortedRows(got), sortedRows(want); g != w || got.Matched != want.Matched {
				t.Errorf("%q: %d records from ClickHouse, %d from files:\n%s", x, got.Matched, want.Matched, lineDiff(g, w))
			}
		}
	}
}

var filterCases = []string{
	"", "any", "ipv4", "ipv6", "not ipv6", "proto tcp", "proto 47", "proto icmp6",
	"host 198.18.0.10", "src ip 198.18.0.10", "dst host fd00::53", "src and dst net 198.18.0.0/16",
	"src or dst net 198.19/16", "net 198.19.0.0 255.255.0.0", "net ::ffff:198.19.0.0/112", "dst net fd00::/64",
	"net ::/0", "net 0.0.0.0/0", "src net ::/8", "src ip ::", "ip ::ffff:198.19.5.1", "src ip 198.19.5.1",
	"ip in [198.19.5.1 fd00::53 198.18.0.0/30]", "not src ip in [198.19.0.0/16, fd00::10]",
	"port 443", "dst port > 1024", "src port <= 12345", "port != 443", "port in [22 53 2048 771]", "not dst port in [53]",
	"dst port 2048", "icmp-type 8", "icmp-code 3", "icmp-type 3 and icmp-code 3", "not icmp-type 8", "icmp-type 128",
	"flags S", "flags SA", "not flags AF", "not (flags SA or proto udp)", "not not flags SA", "flags X",
	"tos 184", "dst tos > 0", "vlan 7", "src vlan 7", "as 64500", "src as in [64500 64501]", "dst as > 0", "src mask 24", "mask 0",
	"in if 3", "out if 3", "if 5", "if > 2",
	"packets > 3", "packets 1", "in bytes > 1k", "bytes <= 80", "bytes > 4g", "flows 1", "flows > 1", "duration > 2500", "duration 0",
	"pps 5", "pps > 100", "bps > 10k", "bpp < 100", "bpp 150",
	"exporter 198.18.255.1", "router ip fd00::ff", "exporter ::", "next ip 198.18.0.1", "flowdir egress", "flowdir 0",
	"proto tcp and (port 22 or port 443) and bytes > 100", "not (proto udp or (src port 53 and not flags S))",
	"host fd00::53%eth0", "ip in [fd00::53%x 198.18.0.10]",
	"observation domain id 7", "observation domain id > 0", "engine-type 1", "engine-id 2", "engine-id 7 and engine-type 0",
	"host localhost",
	"unit nginx", "unit nginx.service", "unit user@1000.service", "not unit nginx", "unit docker-" + testContainer + ".scope and proto tcp",
	"container 0123456789ab", "container " + testContainer, "container f", "container 0", "not container 01", "container ABCDEF",
	"pod " + testPod, "pod " + strings.ToUpper(testPod), "not pod " + testPod,
	"cgroup /kflow-test", "cgroup /kflow-test/a", "cgroup /kflow-test/", "cgroup /", "cgroup /kflow", "not cgroup /kubepods",
	"cgroup /system.slice/nginx.service or container f",
}

// TestHostileFilters: filters written to break out of a SQL string or
// list either do not parse or reach ClickHouse only as numbers and
// addresses the program formats; the tables are intact afterwards and
// the answers are the files'.
func TestHostileFilters(t *testing.T) {
	files, ch := fixture(t, "kflow_chq_hostile")
	ctx := context.Background()
	ports := make([]string, 65536)
	for i := range ports {
		ports[i] = fmt.Sprint(i)
	}
	var addrs []string
	for i := range 4000 {
		addrs = append(addrs, fmt.Sprintf("198.%d.%d.%d fd00::%x", 18+i/65536, i/256%256, i%256, i))
	}
	parsed := 0
	for _, src := range []string{
		// Refused by the lexer (quotes) or the parser.
		"host 198.18.0.10'; DROP TABLE kflow_chq_hostile.flows; --",
		"proto tcp' OR '1'='1",
		"port 443) OR (1=1",
		"bytes > 1 UNION SELECT * FROM system.users",
		"port in [ 1 ] OR 1=1 --",
		// Parsed: zones are any text, and are never sent.
		"host fd00::53%\\;DROP;TABLE;kflow_chq_hostile.flows;--",
		"ip in [fd00::1%\\x27;--, 198.18.0.10 fd00::53%`;--]",
		"exporter fd00::ff%$reboot;`id`",
		"not dst ip fd00::53%eth0\\\\",
		// Parsed: cgroup names and paths are any word, and reach the SQL
		// only as hexadecimal.
		"unit x;DROP;TABLE;kflow_chq_hostile.flows;--",
		"cgroup /kflow-test/a\\b;--`id`\\",
		"pod \\x27;DROP",
		// Parsed: extreme numbers, a 65,536-port list, 8,000 addresses
		// (past ClickHouse's default query size), deep nesting.
		"bytes < 18446744073709551615 and as in [4294967295 0] and if 4294967295",
		"port in [" + strings.Join(ports, " ") + "] and not src port in [" + strings.Join(ports[:30000], ",") + "]",
		"ip in [" + strings.Join(addrs, " ") + "]",
		strings.Repeat("(", 120) + "proto udp" + strings.Repeat(")", 120) + " and " + strings.Repeat("not ", 121) + "flags S",
	} {
		f, err := filter.Parse(src)
		if err != nil {
			continue // refused: nothing reaches the database
		}
		parsed++
		req := &query.Request{Filter: f}
		want, err := files.Query(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ch.Query(ctx, req)
		if err != nil {
			t.Errorf("%.200q: %.300v", src, err)
			continue
		}
		if g, w := sortedRows(got), sortedRows(want); g != w {
			t.Errorf("%.200q: ClickHouse and files differ:\n%s", src, lineDiff(g, w))
		}
	}
	if parsed != 11 {
		t.Errorf("%d hostile filters parsed, want 11", parsed)
	}
	all, err := ch.Query(ctx, &query.Request{Summary: true})
	if err != nil {
		t.Fatal(err)
	}
	if all.Summary.Total.Flows != 3000+uint64(len(edgeRecords())) {
		t.Errorf("after the hostile filters: %d flows", all.Summary.Total.Flows)
	}
}

func chqtestLine(r query.RowJSON) string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// lineDiff lists the lines only ClickHouse's answer has (+) and only
// the files' has (-).
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRequests: every kind of request gives the file backend's answer,
// in the JSON every view prints.
func TestRequests(t *testing.T) {
	files, ch := fixture(t, "kflow_chq_requests")
	ctx := context.Background()
	win := query.Window{From: t0.Add(10 * time.Minute), To: t0.Add(40*time.Minute + 30*time.Second)}
	minuteWin := query.Window{From: t0.Add(10 * time.Minute), To: t0.Add(40 * time.Minute)}
	f := filter.MustParse
	fiveTuple := query.FiveTuple()
	masks, _ := query.ParseAggSpec("srcip4/24,srcip6/64,dstip4/16,proto")
	ports, _ := query.ParseAggSpec("dstport,proto")
	none, _ := query.ParseAggSpec("srcport")
	none.SrcPort = false
	var stats []query.StatSpec
	for _, e := range []string{"srcip", "dstip", "ip", "srcport", "dstport", "port", "proto", "flags", "tos", "inif", "outif", "if", "vlan", "exporter", "dir", "srcas", "dstas", "as", "nhip", "unit", "container", "pod", "cgroup"} {
		s, err := query.ParseStat(e + "/flows/packets/bytes/pps/bps/bpp")
		if err != nil {
			t.Fatal(err)
		}
		stats = append(stats, s)
	}
	dim := func(s string) query.Dim {
		d, err := query.ParseDim(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type tcase struct {
		name string
		req  query.Request
	}
	cases := []tcase{
		{"summary", query.Request{Summary: true}},
		{"summary filtered", query.Request{Summary: true, Filter: f("proto udp or ipv6")}},
		{"summary window", query.Request{Summary: true, Window: win}},
		{"summary window to the nanosecond", query.Request{Summary: true, Window: query.Window{From: t0.Add(123456), To: t0.Add(5*time.Second - 1)}}},
		{"summary window to the second", query.Request{Summary: true, Window: query.Window{From: t0.Add(10 * time.Millisecond), To: t0.Add(5 * time.Second)}}},
		{"summary window from the second", query.Request{Summary: true, Window: query.Window{From: t0.Add(4 * time.Second), To: t0.Add(time.Minute + 500*time.Millisecond)}}},
		{"summary limit", query.Request{Summary: true, Limit: 100, Filter: f("proto tcp")}},
		{"stats every element and order", query.Request{Stats: stats, Top: 5}},
		{"stats all entries", query.Request{Stats: stats[:3], Window: win, Filter: f("not proto tcp")}},
		{"stats of nothing", query.Request{Stats: stats[:2], Filter: f("proto 99")}},
		{"stats record", query.Request{Stats: []query.StatSpec{{Element: query.ElemRecord, Orders: []query.Order{query.ByBytes, query.ByPPS, query.ByFlows}}}, Top: 7}},
		{"stats record aggregated", query.Request{Stats: []query.StatSpec{{Element: query.ElemRecord, Orders: []query.Order{query.ByPackets}}}, Aggregate: &masks, Top: 4}},
		{"stats record paired", query.Request{Stats: []query.StatSpec{{Element: query.ElemRecord, Orders: []query.Order{query.ByBytes}}}, Bidir: query.PairedGuess, Top: 4}},
		{"records unordered", query.Request{Filter: f("proto udp and port 53"), Window: win}},
		{"records limit", query.Request{Limit: 20, Filter: f("proto tcp")}},
		{"aggregate five-tuple", query.Request{Aggregate: &fiveTuple, Filter: f("proto tcp"), Window: win}},
		{"aggregate masks ordered", query.Request{Aggregate: &masks, Ordered: true, Order: query.ByBytes, Top: 10, Offset: 2}},
		{"aggregate ports", query.Request{Aggregate: &ports, Ordered: true, Order: query.ByFlows}},
		{"aggregate nothing kept", query.Request{Aggregate: &none}},
		{"bidir b", query.Request{Bidir: query.Paired, Filter: f("proto udp")}},
		{"bidir B ordered", query.Request{Bidir: query.PairedGuess, Ordered: true, Order: query.ByBytes, Top: 20}},
		{"series total", query.Request{Window: win, Series: &query.SeriesSpec{Step: time.Minute}}},
		{"series srcip", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("srcip")}, Top: 5}}},
		{"series prefixes peak", query.Request{Window: win, Filter: f("proto tcp"), Series: &query.SeriesSpec{Dims: []query.Dim{dim("dstip/16/48")}, Top: 3, Rank: query.RankPeak, Unit: query.UnitL2Bits, Step: 5 * time.Minute}}},
		{"series ports last", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("dstport"), dim("proto")}, Top: 4, Rank: query.RankLast, Unit: query.UnitPackets}}},
		{"series sankey", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("proto"), dim("srcport"), dim("exporter")}, Step: win.To.Sub(win.From)}}},
		{"series overlays", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("srcip/24"), dim("dir")}, Top: 3, Reverse: true, Previous: 10 * time.Minute, Step: time.Minute}}},
		{"series keys", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("proto")}, Keys: [][]query.Value{{{Num: 17}}, {{Num: 99}}}}}},
		{"series units", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("unit")}, Top: 3}}},
		{"series cgroups and containers", query.Request{Window: win, Filter: f("not cgroup /kflow-test"), Series: &query.SeriesSpec{Dims: []query.Dim{dim("cgroup"), dim("container")}, Step: 5 * time.Minute, Unit: query.UnitPackets}}},
		{"series pod keys", query.Request{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{dim("pod")}, Keys: [][]query.Value{{{Str: testPod}}, {{Str: ""}}, {{Str: "x'"}}}}}},
		{"stats cgroups filtered", query.Request{Stats: stats[len(stats)-4:], Window: win, Filter: f("unit nginx or container 0123")}},
		{"records by cgroup", query.Request{Filter: f("cgroup /kflow-test"), Ordered: true, Order: query.ByBytes, Top: 30}},
		{"series sums proto", query.Request{Window: minuteWin, Filter: f("exporter 198.18.255.1 and not proto 47"), Series: &query.SeriesSpec{Dims: []query.Dim{dim("proto"), dim("inif")}, Step: 2 * time.Minute, Unit: query.UnitFlows}}},
		{"series sums overlays", query.Request{Window: minuteWin, Series: &query.SeriesSpec{Dims: []query.Dim{dim("outif")}, Step: 5 * time.Minute, Reverse: true, Previous: 5 * time.Minute}}},
	}
	for _, order := range []query.Order{query.ByFlows, query.ByPackets, query.ByBytes, query.ByPPS, query.ByBPS, query.ByBPP, query.ByStart, query.ByEnd, query.ByDuration} {
		cases = append(cases, tcase{"records ordered " + order.String(), query.Request{Ordered: true, Order: order, Top: 25, Offset: 3, Window: win}})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want, err := files.Query(ctx, &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ch.Query(ctx, &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.req.Series != nil && tt.req.Series.Keys == nil {
				// The consolidated tables keep no record times: the
				// total's span tells which table answered.
				if sums := strings.HasPrefix(tt.name, "series sums"); sums != (got.Total.First == 0) {
					t.Errorf("answered from the per-minute or per-hour sums: %v, want %v", got.Total.First == 0, sums)
				}
			}
			if g, w := chqtest.Encode(&tt.req, got), chqtest.Encode(&tt.req, want); g != w {
				t.Errorf("ClickHouse and files differ:\n%s", lineDiff(g, w))
			}
		})
	}
}

// TestCluster: through the Distributed tables of two shards, the
// answers are the files'.
func TestCluster(t *testing.T) {
	files, dir := fixtureFiles(t)
	ch, err := chquery.Open(chqtest.LoadCluster(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	win := query.Window{From: t0.Add(10 * time.Minute), To: t0.Add(40 * time.Minute)}
	src, _ := query.ParseDim("srcip")
	proto, _ := query.ParseDim("proto")
	for _, req := range []*query.Request{
		{Summary: true},
		{Stats: []query.StatSpec{{Element: query.ElemSrcIP, Orders: []query.Order{query.ByBytes}}}, Top: 5, Filter: filter.MustParse("proto tcp")},
		{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{src}, Top: 4, Reverse: true}},
		{Window: win, Series: &query.SeriesSpec{Dims: []query.Dim{proto}, Step: 5 * time.Minute}},
		{Ordered: true, Order: query.ByBytes, Top: 10, Limit: 500, Filter: filter.MustParse("proto udp")},
		{Bidir: query.PairedGuess, Ordered: true, Order: query.ByPackets, Top: 10, Window: win},
		{Bidir: query.Paired, Window: win, Filter: filter.MustParse("proto udp")},
		{Limit: 50, Filter: filter.MustParse("proto tcp")},
		{Stats: []query.StatSpec{{Element: query.ElemUnit, Orders: []query.Order{query.ByBytes}}, {Element: query.ElemCgroup, Orders: []query.Order{query.ByFlows}}}, Filter: filter.MustParse("not container f")},
		{Ordered: true, Order: query.ByBytes, Top: 10, Filter: filter.MustParse("cgroup /kflow-test or pod " + testPod)},
	} {
		want, err := files.Query(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ch.Query(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		if g, w := chqtest.Encode(req, got), chqtest.Encode(req, want); g != w {
			t.Errorf("%+v: ClickHouse and files differ:\n%s", req, lineDiff(g, w))
		}
	}
}

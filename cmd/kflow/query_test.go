// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// queryRecords is the fixed set of flows of the golden tests: a TCP
// connection in both directions, DNS over IPv4 and IPv6 in both
// directions, a ping, a SYN scan, GRE, traffic of another exporter.
func queryRecords() []flow.Record {
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	a := netip.MustParseAddr
	exp := a("198.18.255.1")
	ms := time.Millisecond
	r := func(src, dst string, sp, dp uint16, proto uint8, pk, by uint64, startMs, durMs int) flow.Record {
		return flow.Record{Src: a(src), Dst: a(dst), SrcPort: sp, DstPort: dp, Proto: proto, Packets: pk, Octets: by,
			Start: t0.Add(time.Duration(startMs) * ms), End: t0.Add(time.Duration(startMs+durMs) * ms),
			InIf: 2, OutIf: 3, Exporter: exp, EndReason: flow.EndIdle}
	}
	recs := []flow.Record{
		r("198.18.0.10", "198.19.5.1", 40000, 443, flow.ProtoTCP, 12, 1800, 0, 2500),
		r("198.19.5.1", "198.18.0.10", 443, 40000, flow.ProtoTCP, 20, 2_400_000, 10, 2480),
		r("198.18.0.10", "198.18.0.53", 50000, 53, flow.ProtoUDP, 1, 71, 100, 0),
		r("198.18.0.53", "198.18.0.10", 53, 50000, flow.ProtoUDP, 1, 187, 101, 0),
		r("fd00::10", "fd00::53", 50001, 53, flow.ProtoUDP, 1, 91, 200, 1),
		r("fd00::53", "fd00::10", 53, 50001, flow.ProtoUDP, 1, 207, 201, 0),
		r("198.18.0.11", "198.18.0.1", 0, 0, flow.ProtoICMP, 4, 336, 300, 3000),
		r("198.19.9.9", "198.18.0.10", 12345, 22, flow.ProtoTCP, 1, 60, 400, 0),
		r("198.19.9.9", "198.18.0.11", 12345, 22, flow.ProtoTCP, 1, 60, 410, 0),
		r("198.18.0.12", "198.19.7.7", 0, 0, 47, 300, 420_000, 500, 60_000),
		r("198.18.0.12", "198.19.5.1", 40001, 443, flow.ProtoTCP, 8, 1200, 1000, 1500),
		r("198.19.5.1", "198.18.0.12", 443, 40001, flow.ProtoTCP, 9, 9000, 1001, 1499),
	}
	recs[0].TCPFlags = flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin
	recs[1].TCPFlags = flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPFin
	recs[1].Direction = flow.Egress
	recs[3].Direction = flow.Egress
	recs[5].Direction = flow.Egress
	recs[6].ICMPType = 8
	recs[7].TCPFlags, recs[8].TCPFlags = flow.TCPSyn, flow.TCPSyn
	recs[9].TOS = 0xb8
	recs[10].TCPFlags, recs[11].TCPFlags = flow.TCPAck|flow.TCPRst, flow.TCPAck
	recs[10].Exporter, recs[11].Exporter = a("198.18.255.2"), a("198.18.255.2")
	recs[10].VLAN, recs[11].VLAN = 7, 7
	return recs
}

// queryDir writes the fixed flows into two files of a nfcapd-like layout.
func queryDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	recs := queryRecords()
	for i, part := range [][]flow.Record{recs[:7], recs[7:]} {
		p := filepath.Join(dir, "2025/03/14", []string{"kflow.202503140925", "kflow.202503140930"}[i])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := flowfile.Create(p, flowfile.WriterOptions{Ident: "test", Created: time.Date(2025, 3, 14, 9, 25+5*i, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		for k := range part {
			if err := w.Append(&part[k]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runQuery(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	requireWired(t, "file")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"file", "query", "--utc"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// queryGoldenCases are the golden questions of file query (the same
// flows are asked of ClickHouse in TestQueryClickHouse).
var queryGoldenCases = []struct {
	name   string
	args   []string
	filter string
}{
	{"query_line", nil, ""},
	{"query_long", []string{"-o", "long"}, ""},
	{"query_extended", []string{"-o", "extended"}, ""},
	{"query_csv", []string{"-o", "csv"}, ""},
	{"query_json", []string{"-o", "json"}, "proto udp"},
	{"query_kflow_csv", []string{"-o", "kflow-csv"}, ""},
	{"query_service_fmt", []string{"-q", "-o", "fmt:%pr %sap %dap %svc %ssvc %dsvc"}, ""},
	{"query_kflow_json", []string{"-o", "kflow-json"}, "proto udp"},
	{"query_ndjson", []string{"-o", "ndjson", "-c", "3"}, ""},
	{"query_fmt", []string{"-o", "fmt:%ts %sa %da %pkt %byt %sap %dap %pr %flg %te %td %fl %in %out %tos %ra %dir %svln %bps %pps %bpp %n  next line"}, ""},
	{"query_plain", []string{"-N", "-q"}, "bytes > 100k"},
	{"query_filter", []string{}, "proto tcp and (dst port 443 or flags S and not flags A)"},
	{"query_order", []string{"-O", "bytes", "-n", "4"}, ""},
	{"query_tstart", []string{"-O", "tstart", "-q"}, "ipv4 and not proto tcp"},
	{"query_stat", []string{"-s", "srcip/bytes", "-s", "dstip/bytes", "-s", "proto/bytes", "-n", "3"}, ""},
	{"query_stat_more", []string{"-s", "ip/flows/packets", "-s", "port", "-s", "flags", "-s", "exporter/bytes", "-s", "if", "-s", "vlan", "-s", "tos", "-n", "4"}, ""},
	{"query_stat_record", []string{"-s", "record/bytes", "-A", "srcip,dstip", "-n", "3"}, ""},
	{"query_stat_json", []string{"-j", "-s", "dstport/bytes", "-n", "2"}, "proto udp"},
	{"query_aggregate", []string{"-A", "srcip4/24,srcip6/64,proto"}, ""},
	{"query_aggregate_ports", []string{"-A", "dstport,proto", "-O", "flows"}, ""},
	{"query_aggregate_flows", []string{"-a", "-q"}, "proto tcp"},
	{"query_bidir", []string{"-B"}, ""},
	{"query_bidir_b", []string{"-b", "-o", "bilong"}, "proto udp"},
	{"query_summary", []string{"-I"}, ""},
	{"query_summary_filter", []string{"-I", "-q"}, "proto tcp"},
	{"query_summary_json", []string{"-I", "-j"}, "ipv6"},
}

func TestQueryGolden(t *testing.T) {
	dir := queryDir(t)
	for _, tt := range queryGoldenCases {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string(nil), tt.args...), dir)
			if tt.filter != "" {
				args = append(args, tt.filter)
			}
			code, out, errOut := runQuery(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tt.name, out)
		})
	}
}

// TestKflowQueryBinary: kflow-query, the query-only binary, prints what
// "kflow file query" prints for every golden question, and rejects what
// it does not do (--clickhouse) as a usage error.
func TestKflowQueryBinary(t *testing.T) {
	bin := testenv.Binary(t, "kflow-query")
	dir := queryDir(t)
	runBin := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--utc"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}
	for _, tt := range queryGoldenCases {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string(nil), tt.args...), dir)
			if tt.filter != "" {
				args = append(args, tt.filter)
			}
			code, out, errOut := runBin(args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tt.name, out)
		})
	}
	code, _, errOut := runBin(dir, "proto", "tcp", "and", "port", "99999")
	if code != exitUsage {
		t.Errorf("bad filter: exit %d, want %d", code, exitUsage)
	}
	golden(t, "query_filter_error", strings.Replace(errOut, "kflow-query: ", "kflow: ", 1))
	for _, args := range [][]string{{"--clickhouse", "http://127.0.0.1:1/kflow"}, {"-I"}, {"--bogus", dir}} {
		if code, _, errOut := runBin(args...); code != exitUsage || !strings.HasPrefix(errOut, "kflow-query: ") {
			t.Errorf("%v: exit %d, want %d: %q", args, code, exitUsage, errOut)
		}
	}
	if code, out, _ := runBin("-V"); code != exitOK || !strings.HasPrefix(out, "kflow-query ") {
		t.Errorf("-V: exit %d: %q", code, out)
	}
	if code, out, _ := runBin("-h"); code != exitOK || !strings.Contains(out, "--stat") || strings.Contains(out, "--clickhouse URL") {
		t.Errorf("-h: exit %d: %q", code, out)
	}
}

func TestQueryFilterError(t *testing.T) {
	dir := queryDir(t)
	code, _, errOut := runQuery(t, dir, "proto", "tcp", "and", "port", "99999")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	golden(t, "query_filter_error", errOut)
	// A filter from a file, with comments, reports lines.
	ff := filepath.Join(t.TempDir(), "filter")
	if err := os.WriteFile(ff, []byte("# web traffic\nproto tcp and\n  dst port in [ 80 443 ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runQuery(t, "-f", ff, "-q", "-o", "fmt:%sap -> %dap", dir)
	if code != exitOK || out != "     198.18.0.10:40000 ->       198.19.5.1:443  \n     198.18.0.12:40001 ->       198.19.5.1:443  \n" {
		t.Errorf("-f: exit %d, %q %s", code, out, errOut)
	}
	if err := os.WriteFile(ff, []byte("proto tcp and\n  dst port in [ 80 443 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runQuery(t, "-f", ff, dir)
	if code != exitUsage || !strings.Contains(errOut, "line 3 column 1") {
		t.Errorf("-f with an error: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"-s", "bogus", dir}, {"-A", "srcip4/40", dir}, {"-o", "fmt:%bogus", dir}, {"-O", "sideways", dir},
		{"-t", "yesterday", dir}, {"-B", "-A", "srcip", dir}, {"-b", "-B", dir}, {"any"},
	} {
		if code, _, errOut := runQuery(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
	if code, _, _ := runQuery(t, "-Z", "proto tcp"); code != exitOK {
		t.Errorf("-Z on a good filter: exit %d", code)
	}
}

// TestQueryInputs: -t selects files and records; -M reads sibling
// directories; -r works like a path argument.
func TestQueryInputs(t *testing.T) {
	dir := queryDir(t)
	count := func(args ...string) uint64 {
		t.Helper()
		code, out, errOut := runQuery(t, append([]string{"-I", "-j"}, args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var s querycli.SummaryJSON
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		return s.Total.Flows
	}
	if n := count(dir); n != 12 {
		t.Errorf("whole dir: %d flows", n)
	}
	// Records that start and end within the window.
	if n := count("-t", "2025/03/14.09:26:53-2025/03/14.09:26:54", dir); n != 6 {
		t.Errorf("-t: %d flows, want 6", n)
	}
	if n := count("-t", "2025/03/15", dir); n != 0 {
		t.Errorf("-t next day: %d flows", n)
	}
	other := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+"-b")
	if err := os.CopyFS(other, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(other)
	if n := count("-M", dir+":"+filepath.Base(other)); n != 24 {
		t.Errorf("-M: %d flows, want 24", n)
	}
	if n := count("-M", dir+":"+filepath.Base(other), "-r", "2025/03/14/kflow.202503140925"); n != 14 {
		t.Errorf("-M with -r: %d flows, want 14", n)
	}
	if n := count("-R", dir, "-c", "5", "proto tcp"); n != 5 {
		t.Errorf("-R -c 5: %d flows", n)
	}
}

// The cross-check: kflow's exporter, inside namespace A of a veth pair,
// exports the same traffic to nfcapd and to kflow's collector (both on A's
// loopback); nfdump and "kflow file query" must then give the same answers.

// nfAnswer is a flows/packets/bytes triple.
type nfAnswer struct{ flows, packets, bytes uint64 }

// nfStatLine parses a line of "nfdump -q -N -s ELEM/ORDER": date, time,
// duration, protocol, value, flows(%), packets(%), bytes(%), pps, bps, bpp.
var nfStatLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\S+\s+\S+\s+(\S+)\s+(\d+)\(\s*[\d.]+\)\s+(\d+)\(\s*[\d.]+\)\s+(\d+)\(`)

func runNfdump(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nfdump", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nfdumpStat returns every value of a statistic (-n 0) by its value.
func nfdumpStat(t *testing.T, dir, stat, filter string) map[string]nfAnswer {
	t.Helper()
	args := []string{"-R", dir, "-q", "-N", "-6", "-n", "0", "-s", stat}
	if filter != "" {
		args = append(args, filter)
	}
	out := runNfdump(t, args...)
	got := map[string]nfAnswer{}
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "No matching") {
			continue
		}
		m := nfStatLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("nfdump -s %s: unparsed line %q\n%s", stat, l, out)
		}
		v := m[1]
		if a, err := netip.ParseAddr(v); err == nil {
			v = a.Unmap().String()
		}
		got[v] = nfAnswer{parseU(t, m[2]), parseU(t, m[3]), parseU(t, m[4])}
	}
	return got
}

func parseU(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// kflowStat is nfdumpStat asked of kflow (JSON output).
func kflowStat(t *testing.T, dir, stat, filter string) map[string]nfAnswer {
	t.Helper()
	args := []string{"-j", "-n", "0", "-s", stat, dir}
	if filter != "" {
		args = append(args, filter)
	}
	code, out, errOut := runQuery(t, args...)
	if code != exitOK {
		t.Fatalf("kflow file query %v: exit %d: %s", args, code, errOut)
	}
	var s query.StatsJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Stats) != 1 {
		t.Fatalf("kflow -s %s: %v\n%s", stat, err, out)
	}
	got := map[string]nfAnswer{}
	for _, e := range s.Stats[0].Top {
		v := e.Value
		// nfdump prints an IPv6 address whose upper 96 bits are zero (the
		// unspecified address :: of duplicate address detection and MLD
		// reports) as the IPv4 address of its last 32 bits.
		if a, err := netip.ParseAddr(v); err == nil && a.Is6() {
			if b := a.As16(); [12]byte(b[:12]) == [12]byte{} {
				v = netip.AddrFrom4([4]byte(b[12:])).String()
			}
		}
		got[v] = nfAnswer{e.Flows, e.Packets, e.Bytes}
	}
	return got
}

// topBytes returns the byte counts of the n largest entries (ties do not
// change it, whatever order each tool breaks them in).
func topBytes(m map[string]nfAnswer, n int) []uint64 {
	var b []uint64
	for _, a := range m {
		b = append(b, a.bytes)
	}
	slices.SortFunc(b, func(x, y uint64) int { return cmp.Compare(y, x) })
	return b[:min(n, len(b))]
}

// sumLines sums "flows packets bytes" lines printed with -o "fmt:%fl %pkt %byt".
func sumLines(t *testing.T, out string) nfAnswer {
	t.Helper()
	var a nfAnswer
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(l, "No matching") {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("unparsed line %q", l)
		}
		a.flows += parseU(t, f[0])
		a.packets += parseU(t, f[1])
		a.bytes += parseU(t, f[2])
	}
	return a
}

var nfSummaryLine = regexp.MustCompile(`(?m)^(Flows|Packets|Bytes): (\d+)$`)

func TestQueryMatchesNfdump(t *testing.T) {
	testenv.RequirePrivileged(t)
	nfcapdBin := testenv.RequireTool(t, "nfcapd")
	testenv.RequireTool(t, "nfdump")
	p := testenv.NewPair(t)
	bin := testenv.KflowBinary(t)

	// kflow's collector and nfcapd, both on A's loopback.
	kdir, ndir := filepath.Join(t.TempDir(), "kflow"), t.TempDir()
	coll, kaddr := startCollectorIn(t, p.A, bin, kdir)
	nf := testenv.StartIn(t, p.A, nfcapdBin, "-b", "127.0.0.1", "-p", "20555", "-w", ndir, "-t", "3600")
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Contains(nf.Output(), "Startup") || nf.Exited() }) || nf.Exited() {
		t.Fatalf("nfcapd did not start:\n%s", nf.Output())
	}

	// kflow's exporter sends the same records to both.
	eready := filepath.Join(t.TempDir(), "exporter-ready")
	exp := testenv.StartIn(t, p.A, bin, "exporter", "run", "-c", "ipfix://127.0.0.1:20555", "-c", "ipfix://"+kaddr,
		"-i", p.AIf, "--pin-dir", "", "--ready-file", eready, "--drain-interval", "100ms", "--idle-timeout", "1s")
	if err := testenv.WaitFile(eready, testenv.Patience, exp); err != nil {
		t.Fatalf("%v\n%s", err, exp.Output())
	}
	truth := testenv.Truth{}
	add := func(tr testenv.Truth, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			o := truth[k]
			o.Packets += c.Packets
			o.Octets += c.Octets
			truth[k] = o
		}
	}
	add(p.UDPEcho(false, 40001, 53, []int{40, 60, 80}))
	add(p.UDPEcho(false, 40002, 53, []int{100}))
	add(p.UDPEcho(false, 40003, 7002, []int{10, 100, 1000, 1400}))
	add(p.UDPEcho(true, 40004, 53, []int{50, 70}))
	add(p.Ping(false, 5, 56))
	add(p.UDPBlast(false, 41000, 8, 400, 200))
	add(p.UDPBlast(false, 42000, 3, 90, 1000))
	if _, err := p.TCPSession(false, 8080, []int{100, 2000, 30000}); err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, c := range truth {
		want += c.Packets
	}
	// Every flow ends by idle timeout; the exporter's clean stop exports
	// what is left. Then both collectors close their files.
	if !testenv.WaitFor(testenv.Patience, func() bool {
		code, out, _ := runQuery(t, "-I", "-j", kdir, "proto udp or proto icmp")
		var s querycli.SummaryJSON
		return code == exitOK && json.Unmarshal([]byte(out), &s) == nil && s.Total.Packets >= want
	}) {
		t.Fatalf("kflow's collector never stored the %d UDP and ICMP packets sent", want)
	}
	if err := exp.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("exporter: %v\n%s", err, exp.Output())
	}
	// Both collectors have read everything sent before they stop.
	_, kport, _ := net.SplitHostPort(kaddr)
	kp, _ := strconv.Atoi(kport)
	for _, port := range []int{kp, 20555} {
		if err := testenv.WaitRead(p.A, "udp", port); err != nil {
			t.Fatal(err)
		}
	}
	if err := coll.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("collector: %v\n%s", err, coll.Output())
	}
	if err := nf.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("nfcapd: %v\n%s", err, nf.Output())
	}

	// The summary: flows, packets, bytes.
	nfI := map[string]uint64{}
	for _, m := range nfSummaryLine.FindAllStringSubmatch(runNfdump(t, "-R", ndir, "-I"), -1) {
		nfI[m[1]] = parseU(t, m[2])
	}
	code, out, errOut := runQuery(t, "-I", "-j", kdir)
	var ks querycli.SummaryJSON
	if code != exitOK || json.Unmarshal([]byte(out), &ks) != nil {
		t.Fatalf("kflow -I: exit %d: %s%s", code, out, errOut)
	}
	if kn := kflowSummary(t, ndir); kn.Total != ks.Total {
		t.Errorf("summary: kflow on nfcapd's files %+v, on its own %+v", kn.Total, ks.Total)
	}
	t.Logf("nfdump -I: %v; kflow -I: %+v", nfI, ks.Total)
	if ks.Total.Flows == 0 || nfI["Flows"] != ks.Total.Flows || nfI["Packets"] != ks.Total.Packets || nfI["Bytes"] != ks.Total.Bytes {
		t.Errorf("summary: nfdump %v, kflow flows %d packets %d bytes %d", nfI, ks.Total.Flows, ks.Total.Packets, ks.Total.Bytes)
	}
	if ks.UDP.Packets < want-10 { // the truth counts UDP and ICMP
		t.Logf("kflow stored %d UDP packets, the traffic had %d UDP+ICMP", ks.UDP.Packets, want)
	}

	// Top 10 by bytes of source, destination and protocol: every value's
	// counters, and the top-10 byte counts.
	for _, stat := range []string{"srcip/bytes", "dstip/bytes", "proto/bytes", "dstport/bytes"} {
		for _, flt := range []string{"", "proto udp and dst port 53"} {
			n, k := nfdumpStat(t, ndir, stat, flt), kflowStat(t, kdir, stat, flt)
			if len(n) == 0 || !maps.Equal(n, k) {
				t.Errorf("-s %s %q: nfdump %v\nkflow %v", stat, flt, n, k)
			}
			if kn := kflowStat(t, ndir, stat, flt); !maps.Equal(n, kn) {
				t.Errorf("-s %s %q: nfdump %v\nkflow on nfcapd's files %v", stat, flt, n, kn)
			}
			if nb, kb := topBytes(n, 10), topBytes(k, 10); !slices.Equal(nb, kb) {
				t.Errorf("-s %s %q: top 10 bytes nfdump %v kflow %v", stat, flt, nb, kb)
			}
		}
	}

	// Filtered counts.
	for _, flt := range []string{
		"proto udp and dst port 53", "proto icmp", "dst port 7002 and bytes > 100", "inet6",
		"net 198.18.0.0/15 and not proto icmp", "proto tcp and flags S", "src port in [ 41000 41001 41002 ] or packets > 40",
		"bytes > 10k or bpp < 100", "port > 1023 and port < 41003",
	} {
		nfs := sumLines(t, runNfdump(t, "-R", ndir, "-q", "-N", "-o", "fmt:%fl %pkt %byt", flt))
		code, out, errOut := runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", kdir, flt)
		if code != exitOK {
			t.Fatalf("kflow %q: exit %d: %s", flt, code, errOut)
		}
		ks := sumLines(t, out)
		t.Logf("%-55q nfdump %+v kflow %+v", flt, nfs, ks)
		if nfs != ks {
			t.Errorf("%q: nfdump %+v, kflow %+v", flt, nfs, ks)
		}
		code, out, errOut = runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", ndir, flt)
		if kn := sumLines(t, out); code != exitOK || nfs != kn {
			t.Errorf("%q: nfdump %+v, kflow on nfcapd's files %+v (exit %d: %s)", flt, nfs, kn, code, errOut)
		}
	}
	if t.Failed() {
		t.Logf("exporter output:\n%s", exp.Output())
	}
}

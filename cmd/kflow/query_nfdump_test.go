// SPDX-License-Identifier: Apache-2.0

package main

import (
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery/chqtest"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/netflow5"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// The same records in nfcapd's file (nfcapd 1.7.1 receives them as
// IPFIX) and in kflow's: nfdump's text outputs of them, listed,
// aggregated and paired, are kflow's line for line, on either file.

// pairRecords adds to the golden flows the cases where pairing is
// subtle: the server's direction seen first, a direction with several
// records, flags that differ per direction, equal ports, ICMP echo and
// reply.
func pairRecords() []flow.Record {
	recs := nowRecords()
	t0 := recs[0].Start
	a := netip.MustParseAddr
	r := func(src, dst string, sp, dp uint16, proto uint8, pk, by uint64, startMs, durMs int, fl uint16) flow.Record {
		return flow.Record{Src: a(src), Dst: a(dst), SrcPort: sp, DstPort: dp, Proto: proto, Packets: pk, Octets: by,
			Start: t0.Add(time.Duration(startMs) * time.Millisecond), End: t0.Add(time.Duration(startMs+durMs) * time.Millisecond),
			InIf: 4, OutIf: 5, Exporter: a("198.18.255.1"), EndReason: flow.EndIdle, TCPFlags: fl}
	}
	more := []flow.Record{
		r("198.18.1.10", "198.19.6.1", 40000, 443, flow.ProtoTCP, 12, 1800, 0, 2500, flow.TCPSyn|flow.TCPAck),
		r("198.19.6.1", "198.18.1.10", 443, 40000, flow.ProtoTCP, 20, 240000, 10, 3000, flow.TCPSyn|flow.TCPAck|flow.TCPFin|flow.TCPPsh),
		r("198.19.6.2", "198.18.1.11", 80, 40001, flow.ProtoTCP, 7, 7000, 0, 1000, flow.TCPRst),
		r("198.18.1.11", "198.19.6.2", 40001, 80, flow.ProtoTCP, 3, 300, 5, 900, flow.TCPSyn),
		r("198.18.1.53", "198.18.1.10", 53, 50000, flow.ProtoUDP, 1, 187, 101, 0, 0),
		r("198.18.1.10", "198.18.1.53", 50000, 53, flow.ProtoUDP, 1, 71, 100, 0, 0),
		r("198.18.1.30", "198.19.6.9", 40009, 443, flow.ProtoTCP, 1, 60, 0, 0, flow.TCPSyn),
		r("198.18.1.30", "198.19.6.9", 40009, 443, flow.ProtoTCP, 5, 600, 100, 100, flow.TCPAck|flow.TCPPsh),
		r("198.19.6.9", "198.18.1.30", 443, 40009, flow.ProtoTCP, 5, 600, 100, 100, flow.TCPFin|flow.TCPUrg),
		r("198.18.1.30", "198.19.6.9", 40009, 443, flow.ProtoTCP, 5, 600, 300, 100, flow.TCPRst),
		r("198.18.1.20", "198.18.1.21", 5000, 5000, flow.ProtoUDP, 5, 500, 0, 100, 0),
		r("198.18.1.21", "198.18.1.20", 5000, 5000, flow.ProtoUDP, 6, 700, 50, 100, 0),
		r("198.18.1.40", "198.18.1.41", 1000, 6000, flow.ProtoUDP, 2_000_000, 3_000_000_000, 0, 20_000, 0),
		r("198.18.1.41", "198.18.1.40", 6000, 1000, flow.ProtoUDP, 3, 300, 10, 10, 0),
	}
	// nfdump -B turns a record around only when its source port is in a
	// lower range than its destination (1024, 32768, 49152): both ports
	// ephemeral, it stays as it came.
	more = append(more, r("198.18.1.50", "198.18.1.51", 34848, 35571, flow.ProtoUDP, 21, 23457, 0, 42, 0),
		r("198.18.1.52", "198.18.1.53", 40000, 50000, flow.ProtoUDP, 2, 200, 0, 7, 0))
	more[12].TOS = 0x28
	more[13].TOS = 0x10
	ping := r("198.18.1.11", "198.18.1.1", 0, 0, flow.ProtoICMP, 4, 336, 0, 3000, 0)
	ping.ICMPType = 8
	pong := r("198.18.1.1", "198.18.1.11", 0, 0, flow.ProtoICMP, 4, 336, 1, 3000, 0)
	// Echo replies both ways: reverse keys of each other, but -b and -B
	// pair TCP and UDP only.
	pong2 := r("198.18.1.11", "198.18.1.1", 0, 0, flow.ProtoICMP, 2, 168, 5, 1000, 0)
	return append(append(recs, more...), ping, pong, pong2)
}

// writeRecords writes recs into a kflow flow file at path.
func writeRecords(t *testing.T, path string, opts flowfile.WriterOptions, recs []flow.Record) {
	t.Helper()
	w, err := flowfile.Create(path, opts)
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

// nfdumpUTC runs nfdump with TZ=UTC.
func nfdumpUTC(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("nfdump", args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sortedLines returns the lines of out, sorted (nfdump lists aggregated
// records in its hash table's order).
func sortedLines(out string) []string {
	l := strings.Split(strings.TrimRight(out, "\n"), "\n")
	slices.Sort(l)
	return l
}

func TestQueryOutputsMatchNfdump(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	recs := pairRecords()
	nfile := nfcapdWrite(t, t.TempDir(), "outputs", recs)
	kdir := t.TempDir()
	writeRecords(t, filepath.Join(kdir, "kflow.202501010000"), flowfile.WriterOptions{Ident: "outputs"}, recs)

	// nfdump masks an address of either family with the last prefix
	// length given (srcip4/24 masks IPv6 sources to /24, srcip6/64 IPv4
	// ones to /0), kflow each family with its own: masks are asked of
	// one family.
	modes := []struct{ args, filter []string }{
		{}, {args: []string{"-a"}}, {args: []string{"-b"}}, {args: []string{"-B"}}, {args: []string{"-A", "srcip,proto"}},
		{args: []string{"-A", "dstip,srcport,proto"}},
		{[]string{"-A", "srcip4/24,dstport"}, []string{"ipv4"}}, {[]string{"-A", "srcip6/64,proto"}, []string{"ipv6"}},
	}
	compared := 0
	for _, m := range modes {
		mode, flt := m.args, m.filter
		formats := []string{"line", "long", "extended"}
		if slices.Contains(mode, "-b") || slices.Contains(mode, "-B") {
			formats = append(formats, "biline", "bilong")
		}
		for _, format := range formats {
			for _, plain := range [][]string{nil, {"-N"}} {
				args := slices.Concat(mode, plain, []string{"-o", format})
				name := strings.Join(args, " ")
				// The records, in any order.
				want := sortedLines(nfdumpUTC(t, slices.Concat([]string{"-r", nfile, "-q"}, args, flt)...))
				for _, in := range []string{nfile, kdir} {
					code, out, errOut := runQuery(t, slices.Concat([]string{"-q"}, args, []string{in}, flt)...)
					if code != exitOK {
						t.Fatalf("%s %s: exit %d: %s", name, in, code, errOut)
					}
					if got := sortedLines(out); !slices.Equal(got, want) {
						t.Errorf("%s on %s:\n%s", name, in, lineDiff(got, want))
					}
					compared++
				}
				// The header line.
				nh, _, _ := strings.Cut(nfdumpUTC(t, slices.Concat([]string{"-r", nfile, "-c", "1"}, args)...), "\n")
				_, out, _ := runQuery(t, slices.Concat([]string{"-c", "1"}, args, []string{kdir})...)
				if kh, _, _ := strings.Cut(out, "\n"); kh != nh {
					t.Errorf("%s: header\nkflow  %q\nnfdump %q", name, kh, nh)
				}
			}
		}
	}
	// CSV: every column but nfdump's exporter sysid and received time
	// (kflow has neither) and, on kflow's own file, the router (nfcapd
	// saw loopback); -a, -b and -B keep the first record's interfaces
	// and other fields, turned with the record under -B.
	for _, m := range modes {
		const cols = 46
		args := slices.Concat(m.args, []string{"-o", "csv"})
		nout := nfdumpUTC(t, slices.Concat([]string{"-r", nfile}, args, m.filter)...)
		for _, in := range []string{nfile, kdir} {
			code, out, errOut := runQuery(t, slices.Concat(args, []string{in}, m.filter)...)
			if code != exitOK {
				t.Fatalf("%v %s: exit %d: %s", args, in, code, errOut)
			}
			skip := 44 // ra
			if in == nfile {
				skip = -1
			}
			got, want := csvColumns(out, cols, skip), csvColumns(nout, cols, skip)
			if !slices.Equal(got, want) || len(got) < 4 {
				t.Errorf("%v on %s:\n%s", args, in, lineDiff(got, want))
			}
		}
	}
	// JSON: nfdump's keys and values, but its exporter sysid and
	// received time.
	nout := nfdumpUTC(t, "-r", nfile, "-o", "json")
	var nl []string
	for _, l := range strings.Split(nout, "\n") {
		if !strings.Contains(l, `"export_sysid"`) && !strings.Contains(l, `"received"`) {
			nl = append(nl, l)
		}
	}
	if code, out, errOut := runQuery(t, "-o", "json", nfile); code != exitOK || out != strings.Join(nl, "\n") {
		t.Errorf("-o json: exit %d: %s\n%s", code, errOut, lineDiff(strings.Split(out, "\n"), nl))
	}

	// Statistics: nfdump's layout, values and summary lines (in any order
	// within a table: entries that tie are listed in the tools' own
	// orders), up to nfdump's timing lines.
	upToTimes := func(out string) []string {
		var l []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "Total flows processed") {
				break
			}
			l = append(l, line)
		}
		slices.Sort(l)
		return l
	}
	for _, args := range [][]string{
		{"-s", "srcip/bytes", "-s", "dstip/bytes", "-s", "proto/bytes", "-n", "10"},
		{"-s", "dstport/flows", "-s", "srcport/packets", "-n", "0"},
		{"-N", "-s", "proto/pps", "-s", "dstip/bps"},
	} {
		want := upToTimes(nfdumpUTC(t, slices.Concat([]string{"-r", nfile}, args)...))
		for _, in := range []string{nfile, kdir} {
			code, out, errOut := runQuery(t, slices.Concat(args, []string{in})...)
			if code != exitOK {
				t.Fatalf("%v %s: exit %d: %s", args, in, code, errOut)
			}
			if got := upToTimes(out); !slices.Equal(got, want) || len(got) < 5 {
				t.Errorf("%v on %s:\n%s", args, in, lineDiff(got, want))
			}
		}
	}

	if compared != 2*2*(6*3+2*5) {
		t.Errorf("%d comparisons made", compared)
	}
}

// lineDiff shows the lines only kflow printed and those only nfdump did.
func lineDiff(kflow, nfdump []string) string {
	var b strings.Builder
	for _, l := range kflow {
		if !slices.Contains(nfdump, l) {
			b.WriteString("kflow:  " + l + "\n")
		}
	}
	for _, l := range nfdump {
		if !slices.Contains(kflow, l) {
			b.WriteString("nfdump: " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "the same lines, counted differently"
	}
	return b.String()
}

// csvColumns returns the lines of CSV output, each cut to its first n
// columns without column skip, sorted; the header and the summary at the
// end included.
func csvColumns(out string, n, skip int) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(l, ",")
		f = f[:min(n, len(f))]
		if skip >= 0 && skip < len(f) {
			f = slices.Delete(f, skip, skip+1)
		}
		lines = append(lines, strings.Join(f, ","))
	}
	slices.Sort(lines)
	return lines
}

// TestQueryNetflow5MatchesNfdump: records with AS numbers, masks, next
// hops and a v5 engine go to nfcapd as NetFlow v5 (and, as kflow's
// collector keeps them, into a kflow file); the AS and next hop
// statistics and the filters on those fields, the engine and host names
// answer as nfdump does.
func TestQueryNetflow5MatchesNfdump(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	recs := nowRecords()
	var v4 []flow.Record
	for i, r := range recs {
		if !r.Src.Is4() {
			continue
		}
		r.SrcAS, r.DstAS = uint32(64500+i%3), uint32(64500+i%2)
		r.SrcMask, r.DstMask = uint8(16+i%3*4), uint8(24-i%2*8)
		if i%2 == 0 {
			r.NextHop = netip.MustParseAddr("198.18.0.1")
		}
		r.Exporter = netip.MustParseAddr("127.0.0.1")
		r.ObservationDomain = 1<<8 | 2 // v5 engine type 1, id 2, as kflow's collector keeps them
		v4 = append(v4, r)
	}
	lo := v4[0]
	lo.Src, lo.SrcAS, lo.NextHop = netip.MustParseAddr("127.0.0.1"), 0, netip.Addr{}
	v4 = append(v4, lo)

	ndir := t.TempDir()
	nfcapdWriteWith(t, ndir, "v5", func(addr string) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		enc, err := netflow5.NewEncoder(netflow5.Config{EngineType: 1, EngineID: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Encode(v4, func(p netflow5.Packet) error { _, err := c.Write(p.Bytes); return err }); err != nil {
			t.Fatal(err)
		}
	})
	kdir := t.TempDir()
	writeRecords(t, filepath.Join(kdir, "kflow.202501010000"), flowfile.WriterOptions{Ident: "v5"}, v4)

	for _, stat := range []string{"srcas", "dstas/bytes", "as/packets", "nhip"} {
		for _, flt := range []string{"", "proto tcp"} {
			n := nfdumpStat(t, ndir, stat, flt)
			for _, dir := range []string{ndir, kdir} {
				if k := kflowStat(t, dir, stat, flt); len(n) < 2 || !maps.Equal(n, k) {
					t.Errorf("-s %s %q on %s: nfdump %v\nkflow %v", stat, flt, dir, n, k)
				}
			}
		}
	}
	// nfdump 1.7.1 refuses AS filters without a geo location database,
	// and nfcapd 1.7.1 does not keep v5's masks: those are checked
	// against the records sent (masks on kflow's file only).
	for _, c := range []struct {
		flt  string
		want func(r *flow.Record) bool
	}{
		{"src mask 24", func(r *flow.Record) bool { return r.SrcMask == 24 }},
		{"dst mask > 16 and not src mask 16", func(r *flow.Record) bool { return r.DstMask > 16 && r.SrcMask != 16 }},
		{"mask 20", func(r *flow.Record) bool { return r.SrcMask == 20 || r.DstMask == 20 }},
		{"src as 64500", func(r *flow.Record) bool { return r.SrcAS == 64500 }},
		{"dst as 64501", func(r *flow.Record) bool { return r.DstAS == 64501 }},
		{"as 64502", func(r *flow.Record) bool { return r.SrcAS == 64502 || r.DstAS == 64502 }},
		{"src as in [64500 64502] and proto tcp", func(r *flow.Record) bool {
			return (r.SrcAS == 64500 || r.SrcAS == 64502) && r.Proto == flow.ProtoTCP
		}},
	} {
		var want nfAnswer
		for i := range v4 {
			if c.want(&v4[i]) {
				want.flows, want.packets, want.bytes = want.flows+1, want.packets+v4[i].Packets, want.bytes+v4[i].Octets
			}
		}
		for _, dir := range []string{ndir, kdir} {
			if dir == ndir && strings.Contains(c.flt, "mask") {
				continue
			}
			code, out, errOut := runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", dir, c.flt)
			if k := sumLines(t, out); code != exitOK || k != want || want.flows == 0 {
				t.Errorf("%q on %s: exit %d: %s: kflow %+v, sent %+v", c.flt, dir, code, errOut, k, want)
			}
		}
	}
	for _, flt := range []string{
		"next ip 198.18.0.1", "not next ip 198.18.0.1", "engine-type 1", "engine-id 2 and proto tcp", "engine-id 3",
		"host localhost", "src host localhost and proto tcp", "not host localhost",
	} {
		var nl []string
		for _, l := range strings.Split(nfdumpUTC(t, "-R", ndir, "-q", "-N", "-o", "fmt:%fl %pkt %byt", flt), "\n") {
			if !strings.HasPrefix(l, "Resolving ") && !strings.HasPrefix(l, "IPv4 address: ") && !strings.HasPrefix(l, "IPv6 address: ") {
				nl = append(nl, l)
			}
		}
		n := sumLines(t, strings.Join(nl, "\n"))
		if (n.flows == 0) != (flt == "engine-id 3") {
			t.Errorf("%q: nfdump %+v", flt, n)
		}
		for _, dir := range []string{ndir, kdir} {
			code, out, errOut := runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", dir, flt)
			if code != exitOK {
				t.Fatalf("kflow %q: exit %d: %s", flt, code, errOut)
			}
			if k := sumLines(t, out); k != n {
				t.Errorf("%q on %s: nfdump %+v, kflow %+v", flt, dir, n, k)
			}
		}
	}
}

// TestQueryServiceStat: -s service counts the golden flows by their
// service (the named port of either side, with its protocol); ClickHouse
// refuses it with the reason.
func TestQueryServiceStat(t *testing.T) {
	dir := queryDir(t)
	want := map[string]nfAnswer{
		"https/tcp":  {4, 12 + 20 + 8 + 9, 1800 + 2_400_000 + 1200 + 9000},
		"domain/udp": {4, 4, 71 + 187 + 91 + 207},
		"ICMP":       {1, 4, 336},
		"ssh/tcp":    {2, 2, 120},
		"GRE":        {1, 300, 420_000},
	}
	if got := kflowStat(t, dir, "service/bytes", ""); !maps.Equal(got, want) {
		t.Errorf("-s service: %v, want %v", got, want)
	}
	url := chqtest.Load(t, "kflow_query_service", dir)
	code, _, errOut := runQuery(t, "--clickhouse", url, "-s", "service")
	if code == exitOK || !strings.Contains(errOut, "statistic service: not supported on ClickHouse") {
		t.Errorf("-s service on ClickHouse: exit %d: %s", code, errOut)
	}
}

// TestQueryNetStat: -s srcnet and dstnet count by the address cut to the
// record's own mask.
func TestQueryNetStat(t *testing.T) {
	recs := queryRecords()
	for i := range recs {
		recs[i].SrcMask, recs[i].DstMask = 24, 16
	}
	recs[4].SrcMask, recs[4].DstMask = 64, 48 // fd00::10 -> fd00::53
	recs[9].SrcMask = 0
	dir := t.TempDir()
	writeRecords(t, filepath.Join(dir, "kflow.202503140925"), flowfile.WriterOptions{Ident: "nets"}, recs)
	src := map[string]nfAnswer{
		"198.18.0.0/24": {5, 12 + 1 + 1 + 4 + 8, 1800 + 71 + 187 + 336 + 1200}, "198.19.5.0/24": {2, 29, 2_409_000},
		"198.19.9.0/24": {2, 2, 120}, "0.0.0.0/0": {1, 300, 420_000}, "fd00::/64": {1, 1, 91}, "fd00::/24": {1, 1, 207},
	}
	if got := kflowStat(t, dir, "srcnet", ""); !maps.Equal(got, src) {
		t.Errorf("-s srcnet: %v\nwant %v", got, src)
	}
	dst := map[string]nfAnswer{
		"198.19.0.0/16": {3, 12 + 300 + 8, 1800 + 420_000 + 1200},
		"198.18.0.0/16": {7, 20 + 1 + 1 + 4 + 1 + 1 + 9, 2_400_000 + 71 + 187 + 336 + 60 + 60 + 9000},
		"fd00::/48":     {1, 1, 91}, "fd00::/16": {1, 1, 207},
	}
	if got := kflowStat(t, dir, "dstnet", ""); !maps.Equal(got, dst) {
		t.Errorf("-s dstnet: %v\nwant %v", got, dst)
	}
}

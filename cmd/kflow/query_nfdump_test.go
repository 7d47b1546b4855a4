// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
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
	more[12].TOS = 0x28
	more[13].TOS = 0x10
	ping := r("198.18.1.11", "198.18.1.1", 0, 0, flow.ProtoICMP, 4, 336, 0, 3000, 0)
	ping.ICMPType = 8
	pong := r("198.18.1.1", "198.18.1.11", 0, 0, flow.ProtoICMP, 4, 336, 1, 3000, 0)
	return append(append(recs, more...), ping, pong)
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
	w, err := flowfile.Create(filepath.Join(kdir, "kflow.202501010000"), flowfile.WriterOptions{Ident: "outputs"})
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
	// saw loopback); -a, -b and -B keep the first record's other fields
	// in nfdump, so there the columns up to the counters.
	for _, m := range modes {
		cols := 46
		if slices.Contains(m.args, "-a") || slices.Contains(m.args, "-b") || slices.Contains(m.args, "-B") {
			cols = 15
		}
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

// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"encoding/csv"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// nfcapd is nfdump's capture daemon, listening on loopback inside a
// namespace and writing its flow files into dir.
type nfcapd struct {
	proc *testenv.Proc
	ns   *testenv.NS
	port int
	dir  string
}

// startNfcapd starts nfcapd listening on 127.0.0.1:port in ns; extra
// options follow (-R repeats what it receives to another port).
func startNfcapd(t *testing.T, ns *testenv.NS, port int, extra ...string) *nfcapd {
	t.Helper()
	bin := testenv.RequireTool(t, "nfcapd")
	testenv.RequireTool(t, "nfdump")
	dir := t.TempDir()
	proc := testenv.StartIn(t, ns, bin, append([]string{"-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir}, extra...)...)
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Contains(proc.Output(), "Startup") || proc.Exited() }) || proc.Exited() {
		t.Fatalf("nfcapd did not start:\n%s", proc.Output())
	}
	return &nfcapd{proc: proc, ns: ns, port: port, dir: dir}
}

// stop ends nfcapd with SIGTERM; it writes its current file on exit. The
// exporter has exited: nfcapd first reads what waits in its socket, however
// slowly it runs.
func (n *nfcapd) stop(t *testing.T) {
	t.Helper()
	if err := testenv.WaitRead(n.ns, "udp", n.port); err != nil {
		t.Errorf("nfcapd: %v", err)
	}
	if err := n.proc.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("nfcapd: %v\n%s", err, n.proc.Output())
	}
	if testing.Verbose() {
		t.Logf("nfcapd log:\n%s", n.proc.Output())
	}
}

// nfdumpRecord is one record nfdump printed.
type nfdumpRecord struct {
	id              flowID
	packets, octets uint64
	flags           uint8
	inIf, outIf     int
}

// readNfdump reads every record of the pair's addresses in dir with
// "nfdump -R dir -o csv" (raw numbers, full addresses). nfdump 1.7.1
// prints the protocol by name, TCP flags as "...A.R..", ICMP type and
// code in the destination port as type*256+code, and the flow direction
// as 0 (ingress) or 1 (egress).
func readNfdump(t *testing.T, p *testenv.Pair, dir string, withDir bool) []nfdumpRecord {
	t.Helper()
	out, err := exec.Command("nfdump", "-R", dir, "-N", "-o", "csv").Output()
	if err != nil {
		t.Fatalf("nfdump -R %s -o csv: %v\n%s", dir, err, out)
	}
	lines := strings.Split(string(out), "\n")
	var rows []string
	for _, l := range lines {
		if l == "" || l == "Summary" || l == "No matching flows" {
			break
		}
		rows = append(rows, l)
	}
	if len(rows) == 0 {
		t.Fatalf("nfdump printed no csv header:\n%s", out)
	}
	r := csv.NewReader(strings.NewReader(strings.Join(rows, "\n")))
	r.TrimLeadingSpace = true
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("nfdump csv: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, name := range []string{"sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "in", "out", "dir"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("nfdump csv has no column %q: %v", name, recs[0])
		}
	}
	var res []nfdumpRecord
	for _, row := range recs[1:] {
		get := func(name string) string { return strings.TrimSpace(row[col[name]]) }
		src, err1 := netip.ParseAddr(get("sa"))
		dst, err2 := netip.ParseAddr(get("da"))
		if err1 != nil || err2 != nil {
			t.Fatalf("nfdump row %v: addresses: %v %v", row, err1, err2)
		}
		src, dst = src.Unmap(), dst.Unmap()
		if !p.Owns(src) || !p.Owns(dst) {
			continue
		}
		var rec nfdumpRecord
		var errs []error
		num := func(name string) uint64 {
			v, err := strconv.ParseUint(get(name), 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			return v
		}
		proto, err := parseProto(get("pr"))
		errs = append(errs, err)
		flags, err := parseFlags(get("flg"))
		errs = append(errs, err)
		rec.id = flowID{Src: src, Dst: dst, Proto: proto, SrcPort: uint16(num("sp")), DstPort: uint16(num("dp"))}
		rec.packets, rec.octets, rec.flags = num("ipkt"), num("ibyt"), flags
		rec.inIf, rec.outIf = int(num("in")), int(num("out"))
		if withDir {
			switch get("dir") {
			case "0":
				rec.id.Dir = "in"
			case "1":
				rec.id.Dir = "out"
			default:
				errs = append(errs, fmt.Errorf("direction %q", get("dir")))
			}
		}
		for _, err := range errs {
			if err != nil {
				t.Fatalf("nfdump row %v: %v", row, err)
			}
		}
		res = append(res, rec)
	}
	return res
}

// nfdumpFlows sums records by flow and checks that each names A's
// interface as its input (ingress) or output (egress) interface.
func nfdumpFlows(t *testing.T, p *testenv.Pair, recs []nfdumpRecord, withDir bool) flows {
	t.Helper()
	got := flows{}
	for _, r := range recs {
		got.add(r.id, r.packets, r.octets, r.flags)
		switch {
		case withDir && r.id.Dir == "in" && r.inIf != p.AIndex,
			withDir && r.id.Dir == "out" && r.outIf != p.AIndex,
			r.inIf != p.AIndex && r.outIf != p.AIndex:
			t.Errorf("nfdump: %v: interfaces in %d out %d, want %d (%s) on the %s side", r.id, r.inIf, r.outIf, p.AIndex, p.AIf, r.id.Dir)
		}
	}
	return got
}

var seqFailures = regexp.MustCompile(`(?m)^Sequence failures:\s*(\d+)`)

// sequenceFailures returns the sequence failures nfdump -I reports for the
// files in dir (lost or reordered export messages, as nfdump counts).
func sequenceFailures(t *testing.T, dir string) int {
	t.Helper()
	out, err := exec.Command("nfdump", "-R", dir, "-I").CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump -I: %v\n%s", err, out)
	}
	m := seqFailures.FindSubmatch(out)
	if m == nil {
		t.Fatalf("nfdump -I printed no sequence failures line:\n%s", out)
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/binary"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// nfcapd's own files read by kflow: nfcapd 1.7.1 writes files (with each
// compression it has) from the golden flows, and kflow's answers on them
// must be nfdump's on the same files, alone or in one tree with kflow's
// own files.

// nfcapdWrite starts nfcapd on a loopback port writing into dir, sends it
// recs as IPFIX, waits until it has read them, stops it so it closes its
// file, and returns the file.
//
// nfcapd itself, on a loaded machine, has been seen to close a file
// without the flows it had read (nfdump read none of them either): the
// file is written again, at most three times, until nfdump reads every
// flow sent from it. The tests compare kflow with nfdump on the file.
func nfcapdWrite(t *testing.T, dir, ident string, recs []flow.Record, flags ...string) string {
	t.Helper()
	for try := 1; ; try++ {
		f := nfcapdWriteWith(t, dir, ident, func(addr string) { sendIPFIX(t, "udp", addr, recs, 7) }, flags...)
		n := nfdumpSummary(t, "-r", f).flows
		if n == uint64(len(recs)) {
			return f
		}
		if try == 3 {
			t.Fatalf("nfcapd %v wrote %d of %d flows sent, %d times", flags, n, len(recs), try)
		}
		t.Logf("nfcapd %v wrote %d of %d flows sent; writing the file again", flags, n, len(recs))
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// nfcapdWriteWith is nfcapdWrite with the records sent by send, to
// nfcapd's address.
func nfcapdWriteWith(t *testing.T, dir, ident string, send func(addr string), flags ...string) string {
	t.Helper()
	bin := testenv.RequireTool(t, "nfcapd")
	var proc *testenv.Proc
	var port int
	for try := 0; ; try++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		args := append([]string{"-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir, "-I", ident}, flags...)
		proc = testenv.Start(t, bin, args...)
		started := testenv.WaitFor(testenv.Patience, func() bool {
			return strings.Contains(proc.Output(), "Startup") || proc.Exited()
		})
		if started && !proc.Exited() {
			break
		}
		if try == 2 {
			t.Fatalf("nfcapd did not start:\n%s", proc.Output())
		}
	}
	send(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err := testenv.WaitRead(nil, "udp", port); err != nil {
		t.Fatal(err)
	}
	if err := proc.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("nfcapd: %v\n%s", err, proc.Output())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.2*"))
	if len(files) != 1 {
		t.Fatalf("nfcapd wrote %v in %s\n%s", files, dir, proc.Output())
	}
	return files[0]
}

// nowRecords are the golden flows moved to two minutes ago.
func nowRecords() []flow.Record {
	recs := queryRecords()
	shift := time.Now().Truncate(time.Second).Add(-2 * time.Minute).Sub(recs[0].Start)
	for i := range recs {
		recs[i].Start = recs[i].Start.Add(shift)
		recs[i].End = recs[i].End.Add(shift)
	}
	return recs
}

// kflowSummary runs "kflow file query -I -j" and decodes it.
func kflowSummary(t *testing.T, args ...string) querycli.SummaryJSON {
	t.Helper()
	code, out, errOut := runQuery(t, append([]string{"-I", "-j"}, args...)...)
	var s querycli.SummaryJSON
	if code != exitOK || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("kflow -I %v: exit %d: %s%s", args, code, out, errOut)
	}
	return s
}

func nfdumpSummary(t *testing.T, args ...string) nfAnswer {
	t.Helper()
	nfI := map[string]uint64{}
	for _, m := range nfSummaryLine.FindAllStringSubmatch(runNfdump(t, append(args, "-I")...), -1) {
		nfI[m[1]] = parseU(t, m[2])
	}
	return nfAnswer{nfI["Flows"], nfI["Packets"], nfI["Bytes"]}
}

func answerOf(s querycli.SummaryJSON) nfAnswer {
	return nfAnswer{s.Total.Flows, s.Total.Packets, s.Total.Bytes}
}

func TestQueryNfcapdFiles(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	root := t.TempDir()
	ndir := filepath.Join(root, "nfcapd")
	recs := nowRecords()
	var files []string
	for _, c := range []struct{ name, flag string }{{"none", ""}, {"lzo", "-z"}, {"lz4", "-y"}, {"bz2", "-j"}} {
		dir := filepath.Join(ndir, c.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var flags []string
		if c.flag != "" {
			flags = append(flags, c.flag)
		}
		files = append(files, nfcapdWrite(t, dir, "Exporter_#1_"+c.name, recs, flags...))
	}
	// kflow's own files next to nfcapd's, in one tree.
	kdir := queryDir(t)
	if err := os.Rename(kdir, filepath.Join(root, "kflow")); err != nil {
		t.Fatal(err)
	}
	kdir = filepath.Join(root, "kflow")

	// The summary, statistics and filtered counts: nfdump on nfcapd's
	// files, kflow on them.
	nf, kf := nfdumpSummary(t, "-R", ndir), answerOf(kflowSummary(t, ndir))
	if nf.flows != uint64(4*len(recs)) || nf != kf {
		t.Errorf("-I: nfdump %+v, kflow %+v (%d flows sent)", nf, kf, 4*len(recs))
	}
	for _, stat := range []string{"srcip/bytes", "dstip/bytes", "proto/bytes", "dstport/packets", "srcport/flows"} {
		for _, flt := range []string{"", "proto udp and dst port 53"} {
			n, k := nfdumpStat(t, ndir, stat, flt), kflowStat(t, ndir, stat, flt)
			if len(n) == 0 || !maps.Equal(n, k) {
				t.Errorf("-s %s %q: nfdump %v\nkflow %v", stat, flt, n, k)
			}
		}
	}
	for _, flt := range []string{
		"", "proto udp and dst port 53", "proto icmp", "inet6", "net 198.18.0.0/15 and not proto icmp",
		"proto tcp and flags S and not flags A", "bytes > 10k or bpp < 100", "port > 1023 and port < 41003", "proto 47",
		"src ip 198.19.5.1 or dst port 22",
	} {
		n := sumLines(t, runNfdump(t, "-R", ndir, "-q", "-N", "-o", "fmt:%fl %pkt %byt", flt))
		code, out, errOut := runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", ndir, flt)
		if code != exitOK {
			t.Fatalf("kflow %q: exit %d: %s", flt, code, errOut)
		}
		if k := sumLines(t, out); n != k || n.flows == 0 {
			t.Errorf("%q: nfdump %+v, kflow %+v", flt, n, k)
		}
		// Each file alone, through file dump.
		if flt == "" {
			for _, f := range files {
				nl := sumLines(t, runNfdump(t, "-r", f, "-q", "-N", "-o", "fmt:%fl %pkt %byt"))
				var stdout, stderr strings.Builder
				if code := run(t.Context(), []string{"file", "dump", "-j", f}, &stdout, &stderr); code != exitOK {
					t.Fatalf("file dump %s: exit %d: %s", f, code, stderr.String())
				}
				if lines := strings.Count(stdout.String(), "\n"); uint64(lines) != nl.flows || lines != len(recs) {
					t.Errorf("file dump %s: %d records, nfdump %d", f, lines, nl.flows)
				}
			}
		}
	}

	// file stat: each file's format, ident and totals (nfdump -I on it).
	for _, f := range files {
		st := statFiles(t, f)
		comp := filepath.Base(filepath.Dir(f))
		want := map[string]string{"none": "none", "lzo": "lzo", "lz4": "lz4", "bz2": "bzip2"}[comp]
		if len(st) != 1 || st[0].Format != "nfdump 1.7 "+want || st[0].Ident != "Exporter_#1_"+comp || st[0].End != "clean" {
			t.Errorf("file stat %s: %+v", f, st)
			continue
		}
		if n, s := nfdumpSummary(t, "-r", f), st[0].Summary.Total; n != (nfAnswer{s.Flows, s.Packets, s.Bytes}) {
			t.Errorf("file stat %s: %+v, nfdump -I %+v", f, s, n)
		}
	}

	// One tree: kflow's files and nfcapd's add up, and -t windows select
	// either by their names and times.
	own := answerOf(kflowSummary(t, kdir))
	all := answerOf(kflowSummary(t, root))
	if all != (nfAnswer{own.flows + kf.flows, own.packets + kf.packets, own.bytes + kf.bytes}) {
		t.Errorf("tree: %+v, kflow's files %+v + nfcapd's %+v", all, own, kf)
	}
	now := time.Now()
	win := now.Add(-15*time.Minute).Format("2006/01/02.15:04:05") + "-" + now.Add(15*time.Minute).Format("2006/01/02.15:04:05")
	if got := answerOf(kflowSummary(t, "-t", win, root)); got != kf {
		t.Errorf("-t %s on the tree: %+v, nfcapd's files %+v", win, got, kf)
	}
	day := "2025/03/14-2025/03/14"
	if got, want := answerOf(kflowSummary(t, "-t", day, root)), answerOf(kflowSummary(t, "-t", day, kdir)); got != want || got != own {
		t.Errorf("-t %s on the tree: %+v, kflow's files %+v", day, got, want)
	}
	checkIdents(t, root, files, own)
	for _, stat := range []string{"srcip/bytes", "proto/flows"} {
		k := kflowStat(t, root, stat, "")
		o, n := kflowStat(t, kdir, stat, ""), kflowStat(t, ndir, stat, "")
		for v, a := range o {
			b := n[v]
			n[v] = nfAnswer{a.flows + b.flows, a.packets + b.packets, a.bytes + b.bytes}
		}
		if !maps.Equal(k, n) {
			t.Errorf("-s %s on the tree: %v, the parts add to %v", stat, k, n)
		}
	}
}

// checkIdents: in the tree of TestQueryNfcapdFiles, the idents of
// nfcapd's files (-I) and of kflow's ("test") are listed by -I, counted by
// -s ident and selected by the filter "ident NAME", each equal to its
// files' totals. (nfdump 1.7.1 has no -s ident, and its "ident" filter
// matches nothing on files read with -r or -R: the files' own totals are
// the reference.)
func checkIdents(t *testing.T, root string, files []string, own nfAnswer) {
	t.Helper()
	want := map[string]nfAnswer{"test": own}
	for _, f := range files {
		st := statFiles(t, f)[0]
		want[st.Ident] = nfAnswer{st.Summary.Total.Flows, st.Summary.Total.Packets, st.Summary.Total.Bytes}
	}
	if got := kflowStat(t, root, "ident/bytes", ""); !maps.Equal(got, want) {
		t.Errorf("-s ident: %v, want %v", got, want)
	}
	s := kflowSummary(t, root)
	if ids := slices.Sorted(maps.Keys(want)); !slices.Equal(s.Idents, ids) {
		t.Errorf("-I idents %v, want %v", s.Idents, ids)
	}
	for id, a := range want {
		if got := answerOf(kflowSummary(t, root, "ident "+id)); got != a {
			t.Errorf("ident %s: %+v, want %+v", id, got, a)
		}
		code, out, _ := runQuery(t, "-q", "-N", "-o", "fmt:%fl %pkt %byt", root, "ident "+id+" or ident nobody")
		if got := sumLines(t, out); code != exitOK || got != a {
			t.Errorf("listing ident %s: %+v, want %+v", id, got, a)
		}
	}
	code, out, _ := runQuery(t, "-I", root)
	if code != exitOK || !strings.Contains(out, "Ident: Exporter_#1_lzo\nIdent: Exporter_#1_none\nIdent: test\n") {
		t.Errorf("-I does not list the idents:\n%s", out)
	}
}

// statFiles runs "kflow file stat -j".
func statFiles(t *testing.T, path string) []fileStatJSON {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"file", "stat", "-j", path}, &stdout, &stderr); code != exitOK {
		t.Fatalf("file stat %s: exit %d: %s", path, code, stderr.String())
	}
	var out struct{ Files []fileStatJSON }
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil {
		t.Fatalf("file stat JSON: %v: %s", err, stdout.String())
	}
	return out.Files
}

// TestQueryNfcapdDamage: a record of an unknown type is skipped and
// counted, as nfdump skips it; a damaged file is an error naming it and
// the offset, and the rest of the tree is still read.
func TestQueryNfcapdDamage(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	recs := nowRecords()
	good := nfcapdWrite(t, t.TempDir(), "good", recs)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	want := answerOf(kflowSummary(t, good))

	// An uncompressed layout 2 file: a 40-byte header, then blocks of a
	// 12-byte header (records, size, type, flags) and records that start
	// with their type and size. The first flow record (type 11) gets a
	// type no reader knows.
	unknown := slices.Clone(b)
	var flowOff int
	for off := 40; flowOff == 0 && off+12 <= len(unknown); {
		n, size := binary.LittleEndian.Uint32(unknown[off:]), binary.LittleEndian.Uint32(unknown[off+4:])
		r := off + 12
		for range n {
			typ, rs := binary.LittleEndian.Uint16(unknown[r:]), binary.LittleEndian.Uint16(unknown[r+2:])
			if typ == 11 {
				flowOff = r
				break
			}
			r += int(rs)
		}
		off += 12 + int(size)
	}
	if flowOff == 0 {
		t.Fatal("no flow record found in nfcapd's file")
	}
	binary.LittleEndian.PutUint16(unknown[flowOff:], 0x77)
	// The damaged file: the first block's size is past the file's end.
	damaged := slices.Clone(b)
	binary.LittleEndian.PutUint32(damaged[44:], uint32(len(b)))

	dir := t.TempDir()
	for name, data := range map[string][]byte{"a/nfcapd.202501010000": unknown, "b/nfcapd.202501010005": damaged, "c/nfcapd.202501010010": b} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ufile := filepath.Join(dir, "a/nfcapd.202501010000")
	// nfdump says it skips it, then lists the others.
	nout := runNfdump(t, "-r", ufile, "-q", "-N", "-o", "fmt:%fl %pkt %byt")
	nout, skipped := strings.CutPrefix(nout, "Skip unknown record type 119\n")
	if !skipped {
		t.Errorf("nfdump did not skip the record of an unknown type:\n%s", nout)
	}
	nfu := sumLines(t, nout)
	ku := answerOf(kflowSummary(t, ufile))
	if nfu != ku || ku.flows != want.flows-1 {
		t.Errorf("unknown record: kflow %+v, nfdump %+v (the file holds %d flows)", ku, nfu, want.flows)
	}
	st := statFiles(t, ufile)
	if len(st) != 1 || st[0].SkippedRecords != 1 {
		t.Errorf("file stat of the file with an unknown record: %+v", st)
	}

	// The tree: the damaged file's error names it and the offset; the
	// other two are read.
	code, out, errOut := runQuery(t, "-I", "-j", dir)
	var s querycli.SummaryJSON
	if code == exitOK || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("tree with a damaged file: exit %d: %s%s", code, out, errOut)
	}
	dfile := filepath.Join(dir, "b/nfcapd.202501010005")
	if !strings.Contains(errOut, dfile+": offset 40:") {
		t.Errorf("the error does not name the damaged file and offset: %s", errOut)
	}
	if got := answerOf(s); got != (nfAnswer{want.flows + ku.flows, want.packets + ku.packets, want.bytes + ku.bytes}) {
		t.Errorf("tree with a damaged file: %+v, want the other two files' %+v and %+v", got, want, ku)
	}
	var stdout, stderr strings.Builder
	if code := run(t.Context(), []string{"file", "stat", "-j", dir}, &stdout, &stderr); code == exitOK || !strings.Contains(stderr.String(), dfile) {
		t.Errorf("file stat of the tree: exit %d: %s", code, stderr.String())
	}
	var sj struct{ Files []fileStatJSON }
	if err := json.Unmarshal([]byte(stdout.String()), &sj); err != nil || len(sj.Files) != 3 || sj.Files[1].End != "damaged" {
		t.Errorf("file stat of the tree: %v: %s", err, stdout.String())
	}
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
)

// writeFlowFile writes recs to dir/name; with clean unset the file is left
// as a crash leaves it (blocks, no summary).
func writeFlowFile(t *testing.T, path string, clean bool, seqFail uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := flowfile.Create(path, flowfile.WriterOptions{Ident: "test", BlockRecords: 16,
		Created: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	recs := collectorRecords(30)
	for i := range recs {
		recs[i].Exporter = netip.MustParseAddr("198.18.0.1")
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.SequenceFailures(netip.MustParseAddr("198.18.0.1"), 0, seqFail)
	if !clean {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return // never closed: no summary
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	requireWired(t, "file")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("kflow %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

func TestFileStat(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "2025/03/01/kflow.202503011200")
	writeFlowFile(t, one, true, 2)
	out := runOK(t, "file", "stat", "--utc", one)
	for _, want := range []string{
		"File       : " + one, "Ident      : test", "End        : clean",
		"Flows      : 30\n", "Flows_tcp  : 10\n", "Flows_udp  : 10\n", "Flows_icmp : 10\n", "Flows_other: 0\n",
		"Packets    : 465\n", "Bytes      : 46500\n",
		"First      : 2025-03-01 12:00:00.000", "Last       : 2025-03-01 12:00:29.500",
		"Sequence failures: 2", "198.18.0.1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stat output lacks %q:\n%s", want, out)
		}
	}
	// A directory: the finished file and a crashed .current one, whose
	// totals are counted from its blocks.
	writeFlowFile(t, filepath.Join(dir, "kflow.current.202503011205"), false, 0)
	writeFlowFile(t, filepath.Join(dir, "unrelated.txt"), true, 0)
	var st struct {
		Files []struct{ End string }
		Total struct {
			Total            struct{ Flows, Packets uint64 }
			SequenceFailures uint64 `json:"sequence_failures"`
		}
	}
	if err := json.Unmarshal([]byte(runOK(t, "file", "stat", "-j", dir)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Files) != 2 || st.Files[0].End != "clean" || st.Files[1].End != "truncated" ||
		st.Total.Total.Flows != 60 || st.Total.Total.Packets != 930 || st.Total.SequenceFailures != 2 {
		t.Errorf("stat -j dir: %+v", st)
	}
	if out := runOK(t, "file", "stat", dir); !strings.Contains(out, "Files      : 2\nTruncated  : 1") {
		t.Errorf("stat dir:\n%s", out)
	}
}

func TestFileDump(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kflow.202503011200")
	writeFlowFile(t, p, true, 0)
	out := runOK(t, "file", "dump", "--utc", p)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 34 {
		t.Fatalf("%d lines, want header + 30 + summary:\n%s", len(lines), out)
	}
	for _, want := range []struct {
		line int
		text string
	}{
		{0, "Date first seen"},
		{1, "2025-03-01 12:00:00.000     00:00:00.500 TCP         198.18.0.0:20000 ->       198.19.0.0:443          1      100     1"},
		{3, "ICMP"}, {3, "198.19.0.2:8.0"},
		{31, "Summary: total flows: 30, total bytes: 46500, total packets: 465,"},
		{33, "Total flows processed: 30, passed: 30, Blocks skipped: 0, files: 1"},
	} {
		if !strings.Contains(lines[want.line], want.text) {
			t.Errorf("line %d %q lacks %q", want.line, lines[want.line], want.text)
		}
	}
	jl := runOK(t, "file", "dump", "-j", "-c", "5", p)
	sc := bufio.NewScanner(strings.NewReader(jl))
	n := 0
	for sc.Scan() {
		var r query.RowJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if r.Src != netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}).String() || r.Exporter != "198.18.0.1" || r.Packets != uint64(n+1) {
			t.Errorf("record %d: %+v", n, r)
		}
		n++
	}
	if n != 5 {
		t.Errorf("%d JSON lines, want 5", n)
	}
}

func TestFileUsage(t *testing.T) {
	requireWired(t, "file")
	for _, args := range [][]string{{"file", "stat"}, {"file", "dump"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"file", "stat", "/nonexistent/kflow.202501010000"}, &stdout, &stderr); code != exitError {
		t.Errorf("missing file: exit %d", code)
	}
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io/fs"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/chquery"
	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// A Witness is a collector whose records the ledger counts.
type Witness struct {
	Name string
	// Target is the exporter's collector URL prefix, as its metrics label
	// it (collector="ipfix://...").
	Target string
	// Records are the packets and octets per flow key the witness
	// recorded (nfdump's keys have no direction).
	Records testenv.Truth
	// NoDirection: match truth keys without their direction.
	NoDirection bool
	// socketDrops: book a shortfall to the socket's drops (nfcapd).
	socketDrops bool
	Files       []FileCheck
	// collector reads the witness's own counters (kflow's collectors).
	collector collectorSide
	// Entries are every record in kflow's files, for the record-level
	// check of the collector's losses.
	Entries []recEntry
}

// recEntry is one record of a flow file.
type recEntry struct {
	Key     testenv.FlowKey
	Start   time.Time
	Packets uint64
}

// FileCheck is one flow file read to its end.
type FileCheck struct {
	Path    string
	Records int
	End     string
	Corrupt int
	Err     string
}

// readKflowDir reads every kflow flow file under dir, checking each is
// readable to its last whole block.
func readKflowDir(dir string) (testenv.Truth, []FileCheck, []recEntry, error) {
	t := testenv.Truth{}
	var entries []recEntry
	var checks []FileCheck
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), flowfile.DefaultPrefix+".") {
			return nil
		}
		fc := FileCheck{Path: path}
		r, err := flowfile.Open(path, flowfile.ReaderOptions{SkipCorrupt: true})
		if err != nil {
			fc.Err = err.Error()
			checks = append(checks, fc)
			return nil
		}
		for r.Next() {
			rec := r.Record()
			k := testenv.KeyOf(rec)
			t[k] = addCounts(t[k], testenv.Counts{Packets: rec.Packets, Octets: rec.Octets, TCPFlags: rec.TCPFlags})
			entries = append(entries, recEntry{Key: k, Start: rec.Start, Packets: rec.Packets})
			fc.Records++
		}
		if err := r.Err(); err != nil {
			fc.Err = err.Error()
		}
		fc.Corrupt = len(r.Corrupt())
		fc.End = fmt.Sprint(r.End().Kind)
		r.Close()
		checks = append(checks, fc)
		return nil
	})
	return t, checks, entries, err
}

// readNfcapdDir reads nfcapd's files with nfdump (CSV, raw numbers):
// flows keyed without direction.
// nfcapdSeqFailures is the "Sequence failures" nfdump -I reads from
// nfcapd's files in dir, -1 when it cannot say.
func nfcapdSeqFailures(dir string) int64 {
	out, err := exec.Command("nfdump", "-R", dir, "-I").Output()
	if err != nil {
		return -1
	}
	var total int64 = -1
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Sequence failures:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			total = max(total, 0) + n
		}
	}
	return total
}

func readNfcapdDir(dir string) (testenv.Truth, []FileCheck, error) {
	out, err := exec.Command("nfdump", "-R", dir, "-N", "-o", "csv").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("nfdump -R %s: %w", dir, err)
	}
	rows, err := csv.NewReader(strings.NewReader(csvPart(string(out)))).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("nfdump csv: %w", err)
	}
	t := testenv.Truth{}
	if len(rows) == 0 {
		return t, nil, nil
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[strings.TrimSpace(name)] = i
	}
	for _, name := range []string{"sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"} {
		if _, ok := col[name]; !ok {
			return nil, nil, fmt.Errorf("nfdump csv: no column %q in %v", name, rows[0])
		}
	}
	for _, row := range rows[1:] {
		get := func(name string) string { return strings.TrimSpace(row[col[name]]) }
		num := func(name string) uint64 { v, _ := strconv.ParseUint(get(name), 10, 64); return v }
		src, err1 := netip.ParseAddr(get("sa"))
		dst, err2 := netip.ParseAddr(get("da"))
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("nfdump row %v: addresses", row)
		}
		k := testenv.FlowKey{Src: src.Unmap(), Dst: dst.Unmap(), Proto: protoNumber(get("pr"))}
		sp, dp := uint16(num("sp")), uint16(num("dp"))
		if k.Proto == flow.ProtoICMP || k.Proto == flow.ProtoICMPv6 {
			k.ICMPType, k.ICMPCode = uint8(dp>>8), uint8(dp)
		} else {
			k.SrcPort, k.DstPort = sp, dp
		}
		t[k] = addCounts(t[k], testenv.Counts{Packets: num("ipkt"), Octets: num("ibyt")})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.*"))
	var checks []FileCheck
	for _, f := range files {
		checks = append(checks, FileCheck{Path: f, End: "read by nfdump"})
	}
	return t, checks, nil
}

// csvPart is nfdump's CSV output without the summary after it.
func csvPart(s string) string {
	var rows []string
	for _, l := range strings.Split(s, "\n") {
		if l == "" || l == "Summary" || l == "No matching flows" {
			break
		}
		rows = append(rows, l)
	}
	return strings.Join(rows, "\n")
}

var protoNames = map[string]uint8{"ICMP": 1, "TCP": 6, "UDP": 17, "ICMP6": 58, "IPV6-ICMP": 58, "SCTP": 132}

func protoNumber(s string) uint8 {
	if p, ok := protoNames[strings.ToUpper(s)]; ok {
		return p
	}
	n, _ := strconv.ParseUint(s, 10, 8)
	return uint8(n)
}

// noDir is a key without its direction.
func noDir(k testenv.FlowKey) testenv.FlowKey {
	k.Dir = 0
	return k
}

func totalPackets(t testenv.Truth) uint64 {
	var n uint64
	for _, c := range t {
		n += c.Packets
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readClickHouse reads every record the UDP collector shipped into
// ClickHouse, through the query backend `file query --clickhouse` uses.
func readClickHouse(s *chtest.Server) (testenv.Truth, []recEntry, error) {
	c, err := clickhouse.NewClient(s.URL(chDatabase), s.HTTPClient(10*time.Minute))
	if err != nil {
		return nil, nil, err
	}
	t := testenv.Truth{}
	var entries []recEntry
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// A listing sorts its rows in the server's memory (the test server
	// allows 2 GB a query): the records are read in parts by source port,
	// which together hold each record once.
	for _, part := range readParts {
		f, err := filter.Parse(part)
		if err != nil {
			return nil, nil, fmt.Errorf("read the shipped records back: %w", err)
		}
		req := &query.Request{Filter: f, Stream: func(row *query.Row) error {
			rec := &row.Record
			k := testenv.KeyOf(rec)
			t[k] = addCounts(t[k], testenv.Counts{Packets: rec.Packets, Octets: rec.Octets, TCPFlags: rec.TCPFlags})
			entries = append(entries, recEntry{Key: k, Start: rec.Start, Packets: rec.Packets})
			return nil
		}}
		if _, err := chquery.New(c).Query(ctx, req); err != nil {
			return nil, nil, fmt.Errorf("read the shipped records back (%s): %w", part, err)
		}
	}
	return t, entries, nil
}

// readParts split the records by source port (records without ports
// have 0) into parts of a size ClickHouse sorts in memory.
var readParts = func() []string {
	var parts []string
	const step = 1 << 13
	for lo := 0; lo+step < 1<<16; lo += step {
		parts = append(parts, fmt.Sprintf("src port >= %d and src port < %d", lo, lo+step))
	}
	return append(parts, fmt.Sprintf("src port >= %d", 1<<16-step))
}()

// sameRecords compares two witnesses' records key by key: the rows in
// ClickHouse must be the files they were shipped from.
func sameRecords(a, b testenv.Truth) (differ int, example string) {
	for k, ca := range a {
		if cb := b[k]; cb.Packets != ca.Packets || cb.Octets != ca.Octets {
			differ++
			if example == "" {
				example = fmt.Sprintf("%v: %d packets %d octets against %d packets %d octets", k, ca.Packets, ca.Octets, cb.Packets, cb.Octets)
			}
		}
	}
	for k, cb := range b {
		if _, ok := a[k]; !ok {
			differ++
			if example == "" {
				example = fmt.Sprintf("%v: absent against %d packets %d octets", k, cb.Packets, cb.Octets)
			}
		}
	}
	return differ, example
}

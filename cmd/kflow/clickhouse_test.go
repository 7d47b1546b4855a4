// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/clickhouse"
	"github.com/kflow-dev/kflow/collector/clickhouse/chtest"
	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestClickHouseSchemaCommand prints the DDL the clickhouse package pins.
func TestClickHouseSchemaCommand(t *testing.T) {
	want, err := os.ReadFile("../../collector/clickhouse/testdata/schema-18.16.sql")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "clickhouse", "schema", "--version", "18.16.1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "-- kflow schema version 3 for ClickHouse 18.16\n"+string(want) {
		t.Errorf("kflow clickhouse schema --version 18.16:\n%s", out)
	}
	if code, _, _ := runCLI(t, "clickhouse", "schema", "--database", "x;y"); code != exitUsage {
		t.Errorf("a bad database name: exit %d", code)
	}
}

// chRecords returns n records with distinct ports, times around now.
func chRecords(n int, seed int) []flow.Record {
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]flow.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Src = netip.AddrFrom4([4]byte{198, 18, byte(seed), byte(i)})
		r.Dst = netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		r.Proto = []uint8{flow.ProtoTCP, flow.ProtoUDP}[i%2]
		r.SrcPort, r.DstPort = uint16(10000+i), uint16(seed)
		r.Packets = uint64(1 + i%13)
		r.Octets = 100*r.Packets + uint64(i%7)
		r.Start = now.Add(-time.Duration(i%50) * time.Second)
		r.End = r.Start.Add(time.Duration(i%9) * time.Millisecond)
	}
	return recs
}

func totals(recs []flow.Record) (packets, bytes uint64) {
	for _, r := range recs {
		packets += r.Packets
		bytes += r.Octets
	}
	return packets, bytes
}

// sendTCP sends recs as IPFIX over TCP from the local address from.
func sendTCP(t *testing.T, from, addr string, recs []flow.Record) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeIPFIX(t, c, ipfix.Config{Stream: true}, recs)
}

// fileRecords reads every record of the flow files under dir.
func fileRecords(t *testing.T, dir string) []flow.Record {
	t.Helper()
	var out []flow.Record
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := flowfile.ParseName(flowfile.DefaultPrefix, d.Name(), time.UTC); !ok {
			return nil
		}
		r, err := flowfile.Open(p, flowfile.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			out = append(out, *r.Record())
		}
		return r.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func chQuery(t *testing.T, url, q string) string {
	t.Helper()
	c, err := clickhouse.NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// sameAsFiles checks that ClickHouse holds exactly the records of the
// flow files: every field, each once.
func sameAsFiles(t *testing.T, url string, files []flow.Record) {
	t.Helper()
	c, err := clickhouse.NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Query(context.Background(), fmt.Sprintf("SELECT %s FROM %s.flows FORMAT RowBinary", strings.Join(clickhouse.RecordColumns(), ", "), c.Database()))
	if err != nil {
		t.Fatal(err)
	}
	rows, n, err := clickhouse.DecodeRecords(b)
	if err != nil || n != len(b) {
		t.Fatalf("%d of %d bytes decoded: %v", n, len(b), err)
	}
	var got, want []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%+v", r.Record))
	}
	for _, r := range files {
		r.Start, r.End = r.Start.UTC(), r.End.UTC()
		want = append(want, fmt.Sprintf("%+v", r))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ClickHouse holds %d rows, the flow files %d records; they differ", len(got), len(want))
	}
}

// startCollectorProc starts the kflow binary's collector on loopback and
// returns it with its TCP address.
func startCollectorProc(t *testing.T, bin, dir string, extra ...string) (*testenv.Proc, string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args := append([]string{"collector", "run", "--dir", dir, "--no-default-listen", "--listen", "tcp://127.0.0.1:0", "--ready-file", ready,
		"--flush-interval", "100ms", "--utc", "--stats-interval", "0"}, extra...)
	p := testenv.Start(t, bin, args...)
	if err := testenv.WaitFile(ready, 30*time.Second, p); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	return p, strings.TrimPrefix(strings.TrimSpace(string(b)), "tcp://")
}

// TestCollectorClickHouseKilled kills the collector with SIGKILL twice:
// once right after ClickHouse acknowledged an insert and before the
// checkpoint recorded it, once while shipping; restarted each time, it
// leaves every stored record in ClickHouse exactly once.
func TestCollectorClickHouseKilled(t *testing.T) {
	srv := chtest.Start(t, chtest.Options{Password: "pw"})
	bin := testenv.KflowBinary(t)
	url := srv.URL("kflow")
	dir := t.TempDir()
	var sent []flow.Record
	waitFiles := func(n int) {
		t.Helper()
		if !testenv.WaitFor(time.Minute, func() bool { return len(fileRecords(t, dir)) >= n }) {
			t.Fatalf("the flow files hold %d records, %d sent", len(fileRecords(t, dir)), n)
		}
	}

	// 1. ClickHouse down: the records wait in the files. When it comes
	// up, the whole backlog goes in one insert, and the collector kills
	// itself after ClickHouse acknowledged it.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	p, addr := startCollectorProc(t, bin, dir, "--clickhouse", url, "--clickhouse-kill-after-insert", "1")
	part := chRecords(3000, 1)
	sendTCP(t, "", addr, part)
	sent = append(sent, part...)
	waitFiles(len(sent))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(time.Minute); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("collector: %v, want killed after its insert\n%s", err, p.Output())
	}
	if got := chQuery(t, url, "SELECT count() FROM kflow.flows"); got != fmt.Sprint(len(sent)) {
		t.Fatalf("after the acknowledged insert: %s rows, want %d", got, len(sent))
	}

	// 2. Restarted: it finds the blocks in ClickHouse and does not send
	// them again; more records; then SIGKILL while shipping.
	p, addr = startCollectorProc(t, bin, dir, "--clickhouse", url)
	if !testenv.WaitFor(time.Minute, func() bool { return strings.Contains(p.Output(), "not sent again") }) {
		t.Fatalf("the restarted collector did not say it found the unacknowledged blocks:\n%s", p.Output())
	}
	part = chRecords(3000, 2)
	sendTCP(t, "", addr, part)
	sent = append(sent, part...)
	waitFiles(len(sent))
	if err := p.Stop(syscall.SIGKILL, 30*time.Second); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Fatal(err)
	}

	// 3. Restarted again, stopped cleanly: it ships the rest.
	p, addr = startCollectorProc(t, bin, dir, "--clickhouse", url)
	part = chRecords(1000, 3)
	sendTCP(t, "", addr, part)
	sent = append(sent, part...)
	waitFiles(len(sent))
	if err := p.Stop(syscall.SIGTERM, time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}

	files := fileRecords(t, dir)
	if len(files) != len(sent) {
		t.Fatalf("the files hold %d records, %d sent", len(files), len(sent))
	}
	sameAsFiles(t, url, files)
	packets, bytes := totals(sent)
	want := fmt.Sprintf("%d\t%d\t%d", len(sent), packets, bytes)
	for _, table := range []string{"flows", "flows_1m", "flows_1h"} {
		agg := "count()"
		if table != "flows" {
			agg = "sum(flows)"
		}
		if got := chQuery(t, url, fmt.Sprintf("SELECT %s, sum(packets), sum(bytes) FROM kflow.%s", agg, table)); got != want {
			t.Errorf("%s: %s, want %s (sent)", table, got, want)
		}
	}
}

// TestCollectorsClickHouseCluster: two shards behind Distributed tables,
// two collectors receiving different exporters and shipping to both
// shards; queries through the Distributed tables on either shard return
// the exact totals of what was sent, per exporter.
func TestCollectorsClickHouseCluster(t *testing.T) {
	shards := chtest.StartCluster(t, "kflow_test")
	urls := shards[0].URL("kflow") + "," + shards[1].URL("kflow")
	exporters := []string{"127.0.0.2", "127.0.0.3"}
	var truth []string
	for i, exp := range exporters {
		_, tcp, stop := runCollector(t, t.TempDir(), "--clickhouse", urls, "--clickhouse-cluster", "kflow_test")
		// Two connections, each shipped before the next: two inserts,
		// one to each shard (in turn).
		var sent []flow.Record
		for j := 0; j < 2; j++ {
			recs := chRecords(2000, 10*i+j)
			sendTCP(t, exp, tcp, recs)
			sent = append(sent, recs...)
			q := fmt.Sprintf("SELECT count() FROM kflow.flows_dist WHERE exporter = toFixedString(IPv6StringToNum('::ffff:%s'), 16)", exp)
			c, err := clickhouse.NewClient(shards[0].URL("kflow"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !testenv.WaitFor(time.Minute, func() bool {
				b, err := c.Query(context.Background(), q) // fails until the schema is made
				return err == nil && strings.TrimSpace(string(b)) == fmt.Sprint(len(sent))
			}) {
				t.Fatalf("collector %d: %s rows shipped, %d sent", i, chQuery(t, shards[0].URL("kflow"), q), len(sent))
			}
		}
		if code, _ := stop(); code != 0 {
			t.Fatalf("collector %d exited %d", i, code)
		}
		packets, bytes := totals(sent)
		truth = append(truth, fmt.Sprintf("%s\t%d\t%d\t%d", exp, len(sent), packets, bytes))
	}
	want := strings.Join(truth, "\n")
	for i, s := range shards {
		local := chQuery(t, s.URL("kflow"), "SELECT count() FROM kflow.flows")
		t.Logf("shard %d holds %s rows", i+1, local)
		if local == "0" {
			t.Errorf("shard %d got no rows", i+1)
		}
		got := chQuery(t, s.URL("kflow"), "SELECT IPv6NumToString(exporter) AS e, count(), sum(packets), sum(bytes) FROM kflow.flows_dist GROUP BY e ORDER BY e")
		got = strings.ReplaceAll(got, "::ffff:", "")
		if got != want {
			t.Errorf("through flows_dist on shard %d:\n%s\nwant\n%s", i+1, got, want)
		}
		sums := chQuery(t, s.URL("kflow"), "SELECT IPv6NumToString(exporter) AS e, sum(flows), sum(packets), sum(bytes) FROM kflow.flows_1m_dist GROUP BY e ORDER BY e")
		if sums = strings.ReplaceAll(sums, "::ffff:", ""); sums != want {
			t.Errorf("through flows_1m_dist on shard %d:\n%s\nwant\n%s", i+1, sums, want)
		}
	}
}

// TestExporterClickHouse runs the exporter with no --collector and with
// --clickhouse: its embedded collector's files are shipped, and
// ClickHouse holds what the files hold, which is the traffic's ground
// truth. The exporter runs in-process in the pair's namespace; the
// shipper's connections are made by other threads, in the test's own
// namespace, where the test server listens.
func TestExporterClickHouse(t *testing.T) {
	testenv.RequirePrivileged(t)
	url := chtest.Shared(t).URL("kflow_exporter")
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		var code int
		_ = p.A.Do(func() error {
			code = run(ctx, []string{"exporter", "run", "-i", p.AIf, "--pin-dir", "", "--keep-capabilities",
				"--dir", dir, "--ready-file", ready, "--drain-interval", "50ms", "--clickhouse", url}, &stdout, &stderr)
			return nil
		})
		done <- code
	}()
	if err := testenv.WaitFile(ready, 10*time.Second, nil); err != nil {
		cancel()
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	truth := pairTruth(t, p)
	cancel() // a clean stop: the last drain exports every flow, then the files are shipped
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exporter exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("exporter did not stop")
	}
	files := fileRecords(t, dir)
	sameFlows(t, "flow files", oursRecords(p, files), truth)
	defer func() {
		if t.Failed() {
			t.Logf("exporter:\n%s", stderr.String())
		}
	}()
	// The local sockets' flows carry their cgroup (--cgroups is on):
	// ClickHouse holds them as the files do.
	withCgroup := 0
	for _, r := range files {
		if r.Cgroup != "" {
			withCgroup++
		}
	}
	if withCgroup == 0 {
		t.Error("no record has a cgroup")
	}
	sameAsFiles(t, url, files)
	c, err := clickhouse.NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS kflow_exporter") })
}

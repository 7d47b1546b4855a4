// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestCollectorKillCounted: a UDP collector killed and started again
// keeps its exporters' templates and sequence numbers (as of its last
// flush) in its directory: it decodes the exporter's next data at once,
// and counts exactly the records sent while it was down as lost across
// the restart.
func TestCollectorKillCounted(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.KflowBinary(t)
	ns, cleanup, err := testenv.NewNS(fmt.Sprintf("kflow-colkill-%d", os.Getpid()%100000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state.json")
	const addr, metrics = "127.0.0.1:4739", "127.0.0.1:9311"
	start := func(n int) *testenv.Proc {
		ready := filepath.Join(t.TempDir(), "ready")
		col := testenv.StartIn(t, ns, bin, "collector", "run", "--no-default-listen", "-l", "udp://"+addr, "-d", dir,
			"--flush-interval", "100ms", "--state-file", state, "--metrics-address", metrics, "--stats-interval", "0", "--ready-file", ready)
		if err := testenv.WaitFile(ready, testenv.Patience, col); err != nil {
			t.Fatalf("collector %d not ready: %v\n%s", n, err, col.Output())
		}
		return col
	}
	metric := func(name string) uint64 {
		t.Helper()
		v, err := scrapeIn(ns, metrics, name)
		if err != nil {
			t.Fatalf("scrape %s: %v", name, err)
		}
		return v
	}
	// Unconnected: a send while nobody listens is not refused, the
	// datagram is lost as on a network.
	var conn *net.UDPConn
	if err := ns.Do(func() (err error) {
		conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Templates in the first message only: after the restart the data
	// decodes with the saved ones or not at all.
	enc, err := ipfix.NewEncoder(ipfix.Config{TemplateRefresh: -1, TemplateRefreshMessages: -1})
	if err != nil {
		t.Fatal(err)
	}
	send := func(recs []flow.Record) {
		t.Helper()
		if _, err := enc.Encode(recs, func(p ipfix.Packet) error { _, err := conn.WriteTo(p.Bytes, to); return err }); err != nil {
			t.Fatal(err)
		}
	}
	// The state file says what was flushed: the exporter's next sequence
	// number.
	flushedTo := func() uint32 {
		b, err := os.ReadFile(state)
		if err != nil {
			return 0
		}
		var st struct {
			Sequences []struct{ Next uint32 } `json:"sequences"`
		}
		if json.Unmarshal(b, &st) != nil || len(st.Sequences) != 1 {
			return 0
		}
		return st.Sequences[0].Next
	}

	col := start(1)
	const before, down, after = 500, 300, 200
	send(testRecords(0, before))
	if !testenv.WaitFor(testenv.Patience, func() bool { return flushedTo() == before }) {
		t.Fatalf("the state file never said %d records were flushed (says %d)\n%s", before, flushedTo(), col.Output())
	}
	col.Kill()
	send(testRecords(before, down)) // nobody listens: lost
	col = start(2)
	send(testRecords(before+down, after))
	if !testenv.WaitFor(testenv.Patience, func() bool { return metric("kflow_collector_records_total") == after }) {
		t.Fatalf("the restarted collector stored %d records, want the %d sent to it (templates saved)\n%s",
			metric("kflow_collector_records_total"), after, col.Output())
	}
	if got := metric("kflow_collector_restart_lost_total"); got != down {
		t.Errorf("restart_lost_total %d, want the %d records sent while the collector was down", got, down)
	}
	if got := metric("kflow_collector_template_misses_total"); got != 0 {
		t.Errorf("%d data sets waited for templates after the restart, want 0", got)
	}
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Contains(col.Output(), "lost across the restart") }) {
		t.Errorf("the collector does not say records were lost across the restart:\n%s", col.Output())
	}
	if err := col.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("collector: %v\n%s", err, col.Output())
	}
	var stored int
	names, _ := filepath.Glob(filepath.Join(dir, "kflow.*"))
	for _, name := range names {
		r, err := flowfile.Open(name, flowfile.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			stored++
		}
		r.Close()
	}
	if stored != before+after {
		t.Errorf("the files hold %d records, want %d (all but the %d sent while the collector was down)", stored, before+after, down)
	}
}

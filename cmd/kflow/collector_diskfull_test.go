// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// fillDisk writes path until its file system refuses with ENOSPC.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	for i := 0; ; i++ {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
		if i > 1<<16 {
			t.Fatal("the file system never filled")
		}
	}
}

// testRecords makes n flow records with distinct keys and known counts.
func testRecords(from, n int) []flow.Record {
	now := time.Now().Truncate(time.Millisecond)
	recs := make([]flow.Record, n)
	for i := range recs {
		j := from + i
		recs[i] = flow.Record{
			Src: netip.AddrFrom4([4]byte{198, 18, byte(j >> 16), byte(j >> 8)}), Dst: netip.AddrFrom4([4]byte{198, 19, 0, byte(j)}),
			Proto: 17, SrcPort: uint16(j), DstPort: 53, Packets: uint64(j%7 + 1), Octets: uint64(100 * (j%7 + 1)),
			Start: now, End: now, Direction: flow.Ingress, InIf: 1, EndReason: flow.EndIdle,
		}
	}
	return recs
}

// TestCollectorDiskFull: the flow files' disk fills up; the collector
// keeps receiving, says why it cannot write, keeps a bounded number of
// records in memory and drops the rest, counted with their packets; once
// the disk has room again it says so and writes. Every packet sent is in
// the files or in the dropped count, exactly.
func TestCollectorDiskFull(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.KflowBinary(t)
	ns, cleanup, err := testenv.NewNS(fmt.Sprintf("kflow-diskfull-%d", os.Getpid()%100000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	flows := filepath.Join(dir, "flows")
	if err := os.Mkdir(flows, 0o755); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	const addr, metrics = "127.0.0.1:4740", "127.0.0.1:9310"
	col := testenv.StartIn(t, ns, bin, "collector", "run", "--no-default-listen", "-l", "tcp://"+addr, "-d", flows,
		"--flush-interval", "100ms", "--metrics-address", metrics, "--stats-interval", "0", "--ready-file", ready)
	if err := testenv.WaitFile(ready, testenv.Patience, col); err != nil {
		t.Fatalf("collector not ready: %v\n%s", err, col.Output())
	}
	var conn net.Conn
	if err := ns.Do(func() (err error) {
		conn, err = net.Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	enc, err := ipfix.NewEncoder(ipfix.Config{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	send := func(recs []flow.Record) (packets uint64) {
		t.Helper()
		for i := range recs {
			packets += recs[i].Packets
		}
		if _, err := enc.Encode(recs, func(p ipfix.Packet) error { _, err := conn.Write(p.Bytes); return err }); err != nil {
			t.Fatal(err)
		}
		return packets
	}
	metric := func(name string) uint64 {
		t.Helper()
		v, err := scrapeIn(ns, metrics, name)
		if err != nil {
			t.Fatalf("scrape %s: %v", name, err)
		}
		return v
	}

	fill := filepath.Join(dir, "fill")
	fillDisk(t, fill)
	// More than the writer keeps in memory (4 blocks of 32,768 records).
	const full = 4*flowfile.DefaultBlockRecords + 5000
	sent := send(testRecords(0, full))
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return metric("kflow_collector_records_total")+metric("kflow_collector_store_errors_total") == full
	}) {
		t.Fatalf("the collector took %d and refused %d records, want %d in all\n%s", metric("kflow_collector_records_total"),
			metric("kflow_collector_store_errors_total"), full, col.Output())
	}
	refused, refusedPackets := metric("kflow_collector_store_errors_total"), metric("kflow_collector_store_error_packets_total")
	if refused == 0 || refusedPackets == 0 {
		t.Errorf("nothing refused (%d records, %d packets) with a full disk and %d records sent", refused, refusedPackets, full)
	}
	// Said at the next look at the counters after a failed flush, which
	// may come after the last record is counted (a hang guard).
	if !testenv.WaitFor(testenv.Patience, func() bool {
		out := col.Output()
		return strings.Contains(out, "cannot write the flow files") && strings.Contains(out, "no space left on device")
	}) {
		t.Errorf("the collector does not say why it cannot write:\n%s", col.Output())
	}
	out := col.Output()
	// Logged at the next look at the counters (a hang guard).
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Contains(col.Output(), "flow records dropped") }) {
		t.Errorf("the collector does not say it dropped records:\n%s", out)
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Contains(col.Output(), "writing the flow files again") }) {
		t.Errorf("the collector does not say it writes again:\n%s", col.Output())
	}
	sent += send(testRecords(full, 1000))
	conn.Close()
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return metric("kflow_collector_records_total")+metric("kflow_collector_store_errors_total") == full+1000
	}) {
		t.Fatalf("the collector did not take the records sent after the disk had room again\n%s", col.Output())
	}
	if err := col.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("collector: %v\n%s", err, col.Output())
	}
	var stored, storedPackets uint64
	names, _ := filepath.Glob(filepath.Join(flows, "kflow.*"))
	for _, name := range names {
		r, err := flowfile.Open(name, flowfile.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			stored++
			storedPackets += r.Record().Packets
		}
		if err := r.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		r.Close()
	}
	if stored+refused != full+1000 || storedPackets+refusedPackets != sent {
		t.Errorf("files hold %d records %d packets, %d records %d packets refused: want %d records %d packets sent",
			stored, storedPackets, refused, refusedPackets, full+1000, sent)
	}
	t.Logf("%d records (%d packets) sent, %d (%d packets) dropped while the disk was full", full+1000, sent, refused, refusedPackets)
}

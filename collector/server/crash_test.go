// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// startLocalCollector runs the collector binary on loopback (no
// namespace needed) and returns its process and UDP address.
func startLocalCollector(t *testing.T, dir string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	var out bytes.Buffer
	cmd := exec.Command(testenv.KflowBinary(t), "collector", "run", "--dir", dir, "--no-default-listen", "--listen", "udp://127.0.0.1:0",
		"--ready-file", ready, "--flush-interval", "200ms")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if !testenv.WaitFor(testenv.Patience, func() bool { _, err := os.Stat(ready); return err == nil }) {
		t.Fatalf("collector not ready: %s", out.String())
	}
	b, _ := os.ReadFile(ready)
	return cmd, &out, strings.TrimPrefix(strings.TrimSpace(string(b)), "udp://")
}

func crashRecords(n, base int) []flow.Record {
	recs := make([]flow.Record, n)
	now := time.Now()
	for i := range recs {
		k := base + i
		recs[i] = flow.Record{Src: netip.AddrFrom4([4]byte{198, 18, byte(k >> 16), byte(k >> 8)}), Dst: netip.AddrFrom4([4]byte{198, 19, 0, byte(k)}),
			Proto: flow.ProtoUDP, SrcPort: uint16(k), DstPort: 53, Packets: 1, Octets: 100, Start: now, End: now}
	}
	return recs
}

// TestCollectorCrash kills the collector with SIGKILL while it writes:
// every file must stay readable, and what was flushed before the kill
// must be there. A restart finishes the cut file.
func TestCollectorCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flows")
	cmd, out, addr := startLocalCollector(t, dir)
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	enc, err := ipfix.NewEncoder(ipfix.Config{})
	if err != nil {
		t.Fatal(err)
	}
	send := func(recs []flow.Record) {
		_, _ = enc.Encode(recs, func(p ipfix.Packet) error {
			_, err := c.Write(p.Bytes)
			time.Sleep(200 * time.Microsecond)
			return err
		})
	}
	const acked = 3000
	send(crashRecords(acked, 0))
	// Acknowledged: flushed to the file, where a reader sees it.
	if !testenv.WaitFor(testenv.Patience, func() bool {
		recs, _, _ := readDir(dir)
		return len(recs) >= acked
	}) {
		t.Fatalf("the first %d records were not flushed within %v\n%s", acked, testenv.Patience, out.String())
	}
	// Keep sending while the collector is killed.
	var sent atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			select {
			case <-stop:
				return
			default:
			}
			send(crashRecords(100, acked+i*100))
			sent.Add(100)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	<-done
	recs, clean, err := readDir(dir)
	if err != nil {
		t.Fatalf("a file is not readable after the crash: %v", err)
	}
	if clean {
		t.Error("expected the current file to be cut short by the crash")
	}
	if len(recs) < acked || int64(len(recs)) > acked+sent.Load() {
		t.Fatalf("%d records after the crash: want between %d and %d", len(recs), acked, acked+sent.Load())
	}
	t.Logf("%d records readable after SIGKILL (%d acknowledged, %d sent after)", len(recs), acked, sent.Load())
	// A restart finishes the cut file; nothing readable is lost.
	cmd2, out2, _ := startLocalCollector(t, dir)
	if err := cmd2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("restarted collector: %v\n%s", err, out2.String())
	}
	if !strings.Contains(out2.String(), "finished a file left by a previous run") {
		t.Errorf("restart did not report the recovered file:\n%s", out2.String())
	}
	after, clean, err := readDir(dir)
	if err != nil || !clean || len(after) != len(recs) {
		t.Errorf("after restart: %d records (want %d), clean %v, err %v", len(after), len(recs), clean, err)
	}
}

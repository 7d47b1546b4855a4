// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// udpIPFIX is a collector for tests: it decodes every IPFIX datagram it
// receives and keeps the flow records' totals per key.
type udpIPFIX struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  testenv.Truth
	errs []error
	done chan struct{}
}

func startUDPIPFIX(t *testing.T, ns *testenv.NS) *udpIPFIX {
	t.Helper()
	c := &udpIPFIX{got: testenv.Truth{}, done: make(chan struct{})}
	if err := ns.Do(func() (err error) {
		c.conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		s := ipfix.NewSession(wire.Limits{})
		var m ipfix.Message
		buf := make([]byte, 1<<16)
		for {
			n, err := c.conn.Read(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					c.fail(err)
				}
				return
			}
			m.Data.Reset()
			if err := s.Decode(&m, buf[:n]); err != nil {
				c.fail(err)
				continue
			}
			c.mu.Lock()
			for i := range m.Records {
				k := testenv.KeyOf(&m.Records[i])
				w := c.got[k]
				w.Packets += m.Records[i].Packets
				w.Octets += m.Records[i].Octets
				c.got[k] = w
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.conn.Close(); <-c.done })
	return c
}

func (c *udpIPFIX) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

func (c *udpIPFIX) totals(t testenv.Truth) (packets, octets uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range t {
		packets += c.got[k].Packets
		octets += c.got[k].Octets
	}
	return packets, octets
}

// scrapeIn reads one Prometheus metric's value (summed over its series)
// from a daemon whose metrics listen on addr inside ns.
func scrapeIn(ns *testenv.NS, addr, name string) (uint64, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			err = ns.Do(func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, a)
				return err
			})
			return c, err
		}}}
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if base, _, _ := strings.Cut(series, "{"); !ok || base != name {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return uint64(sum), nil
}

func truthTotals(t testenv.Truth) (packets, octets uint64) {
	for _, c := range t {
		packets += c.Packets
		octets += c.Octets
	}
	return packets, octets
}

// TestExporterKillCounted: an exporter killed with flows in its cache
// loses their unexported deltas, and the exporter that adopts its pinned
// maps counts exactly those packets and octets as unexported (read from
// the pinned ledger); what was counted while no exporter ran is not lost,
// and an upgrade (SIGHUP) loses and counts nothing.
func TestExporterKillCounted(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.KflowBinary(t)
	p := testenv.NewPair(t)
	// IPv4 only: no neighbour discovery or listener reports in the
	// flows, so the flows are exactly the test's traffic.
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	bpffs := t.TempDir()
	if err := unix.Mount("bpf", bpffs, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	pin := filepath.Join(bpffs, "kflow")
	col := startUDPIPFIX(t, p.A)
	target := "ipfix://" + col.conn.LocalAddr().String()
	const metrics = "127.0.0.1:9309"
	dir := t.TempDir()
	start := func(n int) *testenv.Proc {
		ready := filepath.Join(dir, fmt.Sprintf("ready.%d", n))
		// Timeouts of an hour: nothing is exported before the kill.
		proc := testenv.StartIn(t, p.A, bin, "exporter", "run", "-i", p.AIf, "-c", target, "--pin-dir", pin,
			"--drain-interval", "100ms", "--idle-timeout", "1h", "--active-timeout", "1h",
			"--metrics-address", metrics, "--ready-file", ready)
		if err := testenv.WaitFile(ready, testenv.Patience, proc); err != nil {
			t.Fatalf("exporter %d not ready: %v\n%s", n, err, proc.Output())
		}
		return proc
	}
	metric := func(name string) uint64 {
		t.Helper()
		v, err := scrapeIn(p.A, metrics, name)
		if err != nil {
			t.Fatalf("scrape %s: %v", name, err)
		}
		return v
	}

	exp1 := start(1)
	t1, err := p.UDPEcho(false, 41000, 7001, []int{0, 10, 100, 1000})
	if err != nil {
		t.Fatal(err)
	}
	pings, err := p.Ping(false, 3, 64)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range pings {
		t1[k] = c
	}
	p1, o1 := truthTotals(t1)
	// Drained into the cache (the drain's counters), exported nowhere.
	if !testenv.WaitFor(testenv.Patience, func() bool { return metric("kflow_exporter_packets_total") == p1 }) {
		t.Fatalf("exporter 1 drained %d packets, want %d", metric("kflow_exporter_packets_total"), p1)
	}
	exp1.Kill()
	if gp, _ := col.totals(t1); gp != 0 {
		t.Fatalf("the collector got %d packets before the kill: the timeouts should have kept them cached", gp)
	}

	// Counted by the kernel while no exporter runs: not lost.
	t2, err := p.UDPEcho(false, 41001, 7002, []int{20, 200})
	if err != nil {
		t.Fatal(err)
	}
	p2, o2 := truthTotals(t2)
	exp2 := start(2)
	if got, gotO := metric("kflow_exporter_collector_packets_unexported_total"), metric("kflow_exporter_collector_bytes_unexported_total"); got != p1 || gotO != o1 {
		t.Errorf("exporter 2 counts %d packets %d octets unexported, want exporter 1's cache: %d packets %d octets", got, gotO, p1, o1)
	}
	if !strings.Contains(exp2.Output(), "ended without exporting") {
		t.Errorf("exporter 2 does not say what exporter 1 lost:\n%s", exp2.Output())
	}
	// An upgrade exports everything and loses nothing.
	if err := exp2.Stop(syscall.SIGHUP, testenv.Patience); err != nil {
		t.Fatalf("exporter 2: %v\n%s", err, exp2.Output())
	}
	exp3 := start(3)
	if got := metric("kflow_exporter_collector_packets_unexported_total"); got != p1 {
		t.Errorf("after an upgrade the unexported packets are %d, want still %d (exporter 1's)", got, p1)
	}
	if strings.Contains(exp3.Output(), "ended without exporting") {
		t.Errorf("exporter 3 reports a loss after an upgrade:\n%s", exp3.Output())
	}
	if err := exp3.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("exporter 3: %v\n%s", err, exp3.Output())
	}
	// The final export's datagrams are read and decoded (hang guard).
	testenv.WaitFor(testenv.Patience, func() bool { gp, _ := col.totals(t2); return gp >= p2 })
	if err := testenv.WaitRead(p.A, "udp", col.conn.LocalAddr().(*net.UDPAddr).Port); err != nil {
		t.Fatal(err)
	}
	if gp, gotO := col.totals(t2); gp != p2 || gotO != o2 {
		t.Errorf("the collector got %d packets %d octets of the traffic sent while no exporter ran, want %d %d", gp, gotO, p2, o2)
	}
	if gp, _ := col.totals(t1); gp != 0 {
		t.Errorf("the collector got %d packets of the killed exporter's cache, want 0 (they are the unexported)", gp)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, err := range col.errs {
		t.Errorf("collector: %v", err)
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("the pins stay after a stop without --keep-attached: %v", err)
	}
}

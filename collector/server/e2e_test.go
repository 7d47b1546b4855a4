// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// End-to-end: exporters (kflow's own, softflowd, fprobe) inside namespace
// A of a veth pair watch known traffic and export to "kflow collector run"
// on A's loopback; the flow files must hold exactly the ground truth.

type collector struct {
	proc *testenv.Proc
	ns   *testenv.NS
	dir  string
	udp  string // 127.0.0.1:PORT
	tcp  string
}

func startCollector(t *testing.T, ns *testenv.NS, extra ...string) *collector {
	t.Helper()
	bin := testenv.KflowBinary(t)
	c := &collector{ns: ns, dir: filepath.Join(t.TempDir(), "flows")}
	ready := filepath.Join(t.TempDir(), "ready")
	args := append([]string{"collector", "run", "--dir", c.dir, "--no-default-listen", "--listen", "udp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0",
		"--ready-file", ready, "--flush-interval", "100ms", "--stats-interval", "1s", "--log-level", "debug"}, extra...)
	c.proc = testenv.StartIn(t, ns, bin, args...)
	if err := testenv.WaitFile(ready, testenv.Patience, c.proc); err != nil {
		t.Fatalf("%v\n%s", err, c.proc.Output())
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(b)) {
		if a, ok := strings.CutPrefix(l, "udp://"); ok {
			c.udp = a
		}
		if a, ok := strings.CutPrefix(l, "tcp://"); ok {
			c.tcp = a
		}
	}
	return c
}

// stop ends the collector cleanly and returns every stored record. The
// exporters have stopped: first the collector reads what they sent, which
// may still wait in its sockets however slowly it runs.
func (c *collector) stop(t *testing.T) []flow.Record {
	t.Helper()
	for network, addr := range map[string]string{"udp": c.udp, "tcp": c.tcp} {
		if addr == "" {
			continue
		}
		_, port, _ := strings.Cut(addr, ":")
		n, _ := strconv.Atoi(port)
		if err := testenv.WaitRead(c.ns, network, n); err != nil {
			t.Errorf("collector: %v", err)
		}
	}
	if err := c.proc.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("collector: %v\n%s", err, c.proc.Output())
	}
	recs, clean, err := readDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !clean {
		t.Error("a file was not closed cleanly after SIGTERM")
	}
	return recs
}

// readDir reads every flow file under dir.
func readDir(dir string) (recs []flow.Record, clean bool, err error) {
	clean = true
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r, err := flowfile.Open(p, flowfile.ReaderOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			recs = append(recs, *r.Record())
		}
		if r.End().Kind != flowfile.EndClean {
			clean = false
		}
		if err := r.Err(); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	return recs, clean, err
}

func totalPackets(t testenv.Truth) (n uint64) {
	for _, c := range t {
		n += c.Packets
	}
	return n
}

// waitStored waits until the collector's files hold want packets (warm-up
// flows aside), for at most testenv.Patience.
func (c *collector) waitStored(want uint64) bool {
	return testenv.WaitFor(testenv.Patience, func() bool {
		recs, _, _ := readDir(c.dir)
		var n uint64
		for i := range recs {
			if !isWarmUp(&recs[i]) {
				n += recs[i].Packets
			}
		}
		return n >= want
	})
}

// normalize drops what an exporter does not report: the direction (v5 and
// pcap probes have none; the addresses tell the two ways apart).
func normalize(tr testenv.Truth, keepDir bool) testenv.Truth {
	out := testenv.Truth{}
	for k, c := range tr {
		if !keepDir {
			k.Dir = 0
		}
		o := out[k]
		o.Packets += c.Packets
		o.Octets += c.Octets
		out[k] = o
	}
	return out
}

func compareTruth(t *testing.T, recs []flow.Record, truth testenv.Truth, keepDir bool, since time.Time) {
	t.Helper()
	got := normalize(testenv.Sum(recs), keepDir)
	want := normalize(truth, keepDir)
	for k, w := range want {
		g := got[k]
		if g.Packets != w.Packets || g.Octets != w.Octets {
			t.Errorf("%v: %d packets %d octets stored, truth %d packets %d octets", k, g.Packets, g.Octets, w.Packets, w.Octets)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected flow %v: %d packets %d octets", k, g.Packets, g.Octets)
		}
	}
	// Timestamps resolve to the test's time, whatever the exporter's
	// convention (sysUptime-relative or absolute).
	lo, hi := since.Add(-2*time.Second), time.Now().Add(2*time.Second)
	for i := range recs {
		r := &recs[i]
		if r.Start.Before(lo) || r.End.After(hi) || r.End.Before(r.Start) {
			t.Errorf("%v: times %v..%v outside the test's %v..%v", testenv.KeyOf(r), r.Start, r.End, lo, hi)
			break
		}
	}
}

// flushPcap sends non-IP frames (IEEE local experimental ethertype 0x88b5)
// from B to A. libpcap's TPACKET_V3 ring hands packets to softflowd and
// fprobe only when a ring block is full (neither asks for immediate mode),
// so without this the traffic under test can sit in a half-full block
// indefinitely. The probes ignore non-IP frames: they add no flow.
func flushPcap(t *testing.T, p *testenv.Pair, frames int) {
	t.Helper()
	err := p.B.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		frame := make([]byte, 64)
		copy(frame[0:], p.AMAC)
		copy(frame[6:], p.BMAC)
		frame[12], frame[13] = 0x88, 0xb5
		to := &unix.SockaddrLinklayer{Ifindex: p.BIndex, Halen: 6}
		copy(to.Addr[:], p.AMAC)
		for range frames {
			if err := unix.Sendto(fd, frame, 0, to); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("flush pcap ring: %v", err)
	}
}

// Warm-up flows: datagrams from A to B sent before the traffic under test
// until a libpcap probe shows it captures (libpcap opens its capture some
// time after the process starts, later on a busy machine). Each datagram
// has its own source port from warmUpPorts, so each is a flow of its own
// that ends by the probe's idle timeout while the next ones are sent. The
// ones sent before the capture started are not seen, so the warm-up flows
// are left out of every comparison.
const (
	warmUpPortBase = 39000
	warmUpPorts    = 1000
)

func isWarmUp(r *flow.Record) bool {
	return r.SrcPort >= warmUpPortBase && r.SrcPort < warmUpPortBase+warmUpPorts
}

// warmUp sends warm-up datagrams, each pushed through the probe's capture
// ring (flushPcap), until ready holds, for at most testenv.Patience.
func warmUp(t *testing.T, p *testenv.Pair, what string, ready func() bool) {
	t.Helper()
	start, sent := time.Now(), 0
	if !testenv.WaitFor(testenv.Patience, func() bool {
		if _, err := p.UDPBlast(false, uint16(warmUpPortBase+sent%warmUpPorts), 1, 1, 10); err != nil {
			t.Fatal(err)
		}
		sent++
		flushPcap(t, p, 20000)
		return ready()
	}) {
		t.Fatalf("%s did not capture the warm-up flows within %v", what, testenv.Patience)
	}
	t.Logf("%s captures: a warm-up flow seen after %d datagrams, %v", what, sent, time.Since(start).Round(time.Millisecond))
}

// warmUpStored reports whether the collector stored a warm-up record:
// the probe captures and exports.
func (c *collector) warmUpStored() bool {
	recs, _, _ := readDir(c.dir)
	for i := range recs {
		if isWarmUp(&recs[i]) {
			return true
		}
	}
	return false
}

// withoutWarmUp drops the warm-up flows' records.
func withoutWarmUp(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for i := range recs {
		if !isWarmUp(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

// traffic runs IPv4 exchanges whose truth is known by construction.
// blast is the number of datagrams of a burst over 8 flows.
func traffic(t *testing.T, p *testenv.Pair, blast int) testenv.Truth {
	t.Helper()
	truth := testenv.Truth{}
	add := func(tr testenv.Truth, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			o := truth[k]
			o.Packets += c.Packets
			o.Octets += c.Octets
			truth[k] = o
		}
	}
	add(p.UDPEcho(false, 40001, 7001, []int{10, 100, 1000, 1400}))
	add(p.UDPEcho(false, 40002, 7002, []int{64, 64, 64}))
	add(p.Ping(false, 5, 56))
	add(p.UDPBlast(false, 41000, 8, blast, 200))
	return truth
}

func TestOwnExporterIntoCollector(t *testing.T) {
	for _, tt := range []struct {
		scheme  string
		tcp     bool
		keepDir bool
	}{
		{"ipfix", false, true},
		{"ipfix+tcp", true, true},
		{"nfv9", false, true},
		{"nfv5", false, false},
	} {
		t.Run(tt.scheme, func(t *testing.T) {
			testenv.RequirePrivileged(t)
			p := testenv.NewPair(t)
			if err := p.DisableIPv6(); err != nil {
				t.Fatal(err)
			}
			c := startCollector(t, p.A)
			addr := c.udp
			if tt.tcp {
				addr = c.tcp
			}
			ready := filepath.Join(t.TempDir(), "exporter-ready")
			exp := testenv.StartIn(t, p.A, testenv.KflowBinary(t), "exporter", "run", "-c", tt.scheme+"://"+addr,
				"-i", p.AIf, "--pin-dir", "", "--ready-file", ready, "--drain-interval", "100ms", "--idle-timeout", "1s")
			if err := testenv.WaitFile(ready, testenv.Patience, exp); err != nil {
				t.Fatalf("%v\n%s", err, exp.Output())
			}
			since := time.Now()
			truth := traffic(t, p, 400)
			// Every flow ends by idle timeout and is exported; a clean
			// exporter shutdown would export what is left.
			if !c.waitStored(totalPackets(truth)) {
				t.Logf("collector did not store the whole truth within %v", testenv.Patience)
			}
			if err := exp.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
				t.Fatalf("exporter: %v\n%s", err, exp.Output())
			}
			recs := c.stop(t)
			compareTruth(t, recs, truth, tt.keepDir, since)
			if t.Failed() {
				t.Logf("collector output:\n%s\nexporter output:\n%s", c.proc.Output(), exp.Output())
			}
		})
	}
}

// Third-party probes. Both count L3 octets (the IP total length) like
// kflow: softflowd takes the IP header's length; fprobe excludes the
// link-layer header by default (-k would include it).

func TestSoftflowdIntoCollector(t *testing.T) {
	for _, version := range []string{"10", "9", "5"} {
		t.Run("v"+version, func(t *testing.T) {
			testenv.RequirePrivileged(t)
			bin := testenv.RequireTool(t, "softflowd")
			ctl := testenv.RequireTool(t, "softflowctl")
			p := testenv.NewPair(t)
			c := startCollector(t, p.A)
			tmp := t.TempDir()
			sock := filepath.Join(tmp, "softflowd.ctl")
			sf := testenv.StartIn(t, p.A, bin, "-d", "-N", "-i", p.AIf, "-n", c.udp, "-v", version,
				"-c", sock, "-p", filepath.Join(tmp, "softflowd.pid"), "-C", "128", "-B", "1048576")
			if !testenv.WaitFor(testenv.Patience, func() bool {
				_, err := os.Stat(sock)
				return err == nil
			}) {
				t.Fatalf("softflowd control socket did not appear\n%s", sf.Output())
			}
			processed := func() uint64 {
				out, _ := p.A.Exec(ctl, "-c", sock, "statistics")
				return softflowdProcessed(out)
			}
			warmUp(t, p, "softflowd", func() bool { return processed() > 0 })
			base := processed()
			since := time.Now()
			truth := dualTraffic(t, p, 400)
			if version == "5" {
				truth = only4(truth) // v5 has no IPv6 addresses
			}
			flushPcap(t, p, 20000)
			if !testenv.WaitFor(testenv.Patience, func() bool {
				return processed() >= base+totalPackets(truth)
			}) {
				out, _ := p.A.Exec(ctl, "-c", sock, "statistics")
				t.Logf("softflowd has not processed the %d packets: %s", totalPackets(truth), out)
			}
			if out, err := p.A.Exec(ctl, "-c", sock, "expire-all"); err != nil {
				t.Fatalf("softflowctl expire-all: %v: %s", err, out)
			}
			if !c.waitStored(totalPackets(truth)) {
				t.Logf("collector did not store the whole truth within %v", testenv.Patience)
			}
			if out, err := p.A.Exec(ctl, "-c", sock, "shutdown"); err != nil {
				t.Logf("softflowctl shutdown: %v: %s", err, out)
			}
			if err := sf.Wait(testenv.Patience); err != nil {
				t.Logf("softflowd: %v", err)
			}
			recs := withoutWarmUp(c.stop(t))
			if version == "5" {
				noIPv6(t, recs) // and no IPv4 flow but the truth's
			} else {
				recs = pairFlows(t, p, recs)
			}
			compareTruth(t, recs, truth, false, since)
			if t.Failed() {
				t.Logf("softflowd output:\n%s\ncollector output:\n%s", sf.Output(), c.proc.Output())
			}
		})
	}
}

func TestFprobeIntoCollector(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.RequireTool(t, "fprobe")
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, p.A)
	// -l 2: log to stdout and stay in the foreground; -d 1 -s 1: expire
	// flows idle for a second, checked every second.
	fp := testenv.StartIn(t, p.A, bin, "-l", "2", "-p", "-i", p.AIf, "-d", "1", "-s", "1", "-e", "5", "-S", "128", "-B", "1024", c.udp)
	warmUp(t, p, "fprobe", c.warmUpStored)
	since := time.Now()
	// A small burst: fprobe's capture loses most of a 400-datagram one
	// (it captured 176: a libpcap probe's loss, not the collector's).
	truth := traffic(t, p, 40)
	flushPcap(t, p, 20000)
	// fprobe 1.1 emits its flow cache on SIGTERM; give its scans a chance
	// first.
	c.waitStored(totalPackets(truth))
	if err := fp.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Logf("fprobe: %v", err)
	}
	recs := withoutWarmUp(c.stop(t))
	compareTruth(t, recs, truth, false, since)
	if t.Failed() {
		t.Logf("fprobe output:\n%s\ncollector output:\n%s", fp.Output(), c.proc.Output())
	}
}

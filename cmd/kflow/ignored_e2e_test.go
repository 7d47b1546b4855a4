// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestIgnoredEndToEnd is kflow's promise through its own collector: the
// exporter's flow map is far too small (16 flows) and its map-full ring
// buffer one page, so that packets go the map-full way and, past the ring
// buffer, into the ignored counters; the exporter sends its flows and its
// ignored counters (IPFIX options records, IEs 164 and 165) to kflow's
// collector; then "kflow file query -I" shows packets and bytes in flows
// plus ignored packets and bytes equal to the traffic sent, exactly. The
// same holds for the exporter's embedded mode, which writes the flow files
// itself and keeps its ignored counters in them as the collector would,
// and across an upgrade: a second exporter adopts the first one's pinned
// maps, whose ignored counters go on counting, and the files must not
// count the first exporter's ignored packets twice. NetFlow v9 carries
// the same statistics (IPFIX's IEs 160, 164 and 165 in its options
// records).
func TestIgnoredEndToEnd(t *testing.T) {
	t.Run("collector", func(t *testing.T) { testIgnored(t, "ipfix", false, "") })
	t.Run("embedded", func(t *testing.T) { testIgnored(t, "", true, "") })
	t.Run("upgrade", func(t *testing.T) { testIgnored(t, "ipfix", false, "upgrade") })
	t.Run("embedded-upgrade", func(t *testing.T) { testIgnored(t, "", true, "upgrade") })
	t.Run("netflow9-upgrade", func(t *testing.T) { testIgnored(t, "nfv9", false, "upgrade") })
	t.Run("netflow9-restart", func(t *testing.T) { testIgnored(t, "nfv9", false, "restart") })
	t.Run("restart", func(t *testing.T) { testIgnored(t, "ipfix", false, "restart") })
}

// testIgnored sends, then (with second "upgrade" or "restart") stops the
// exporter and sends again through the next one: an upgrade leaves the
// datapath to it (SIGHUP, pinned maps), a restart does not (SIGTERM, new
// maps whose counters start again from zero).
func testIgnored(t *testing.T, scheme string, embedded bool, second string) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	// No IPv6 and static neighbours: every IP packet on A's interface is
	// the test's own, so the ignored counters are too.
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	bin := testenv.KflowBinary(t)
	kdir := filepath.Join(t.TempDir(), "flows")
	var coll *testenv.Proc
	var kaddr string
	if !embedded {
		coll, kaddr = startCollectorIn(t, p.A, bin, kdir)
	}
	// One drain, at the end: everything sent meets a map of 16 flows and
	// a ring buffer of one page in between.
	to := []string{"-c", scheme + "://" + kaddr}
	if embedded {
		to = []string{"-d", kdir}
	}
	pins := ""
	if second == "upgrade" {
		pins = filepath.Join(mountBPFFS(t), "kflow")
	}
	startExporter := func() *testenv.Proc {
		eready := filepath.Join(t.TempDir(), "exporter-ready")
		exp := testenv.StartIn(t, p.A, bin, append([]string{"exporter", "run", "-i", p.AIf, "--pin-dir", pins,
			"--ready-file", eready, "--map-entries", "16", "--ring-buffer-bytes", strconv.Itoa(os.Getpagesize()),
			"--drain-interval", "1h"}, to...)...)
		if err := testenv.WaitFile(eready, testenv.Patience, exp); err != nil {
			t.Fatalf("%v\n%s", err, exp.Output())
		}
		return exp
	}
	var want testenv.Counts
	blast := func(base uint16) {
		truth, err := p.UDPBlast(false, base, 2000, 8000, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range truth {
			want.Packets += c.Packets
			want.Octets += c.Octets
		}
	}
	exp := startExporter()
	blast(10000)
	if second != "" {
		// SIGHUP: the exporter exports everything and exits, leaving its
		// programs attached and its maps pinned; the next one adopts them.
		// SIGTERM: it exports everything and detaches.
		sig := syscall.SIGHUP
		if second == "restart" {
			sig = syscall.SIGTERM
		}
		if err := exp.Stop(sig, testenv.Patience); err != nil {
			t.Fatalf("exporter: %v\n%s", err, exp.Output())
		}
		exp = startExporter()
		blast(20000)
	}
	// The exporter's clean stop drains, exports every flow and its last
	// counters; the collector reads everything sent before it stops.
	if err := exp.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("exporter: %v\n%s", err, exp.Output())
	}
	if !embedded {
		_, port, _ := strings.Cut(kaddr, ":")
		kp, _ := strconv.Atoi(port)
		if err := testenv.WaitRead(p.A, "udp", kp); err != nil {
			t.Fatal(err)
		}
		if err := coll.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
			t.Fatalf("collector: %v\n%s", err, coll.Output())
		}
	}

	code, out, errOut := runQuery(t, "-I", "-j", kdir)
	var s querycli.SummaryJSON
	if code != exitOK || json.Unmarshal([]byte(out), &s) != nil {
		t.Fatalf("file query -I: exit %d: %s%s", code, out, errOut)
	}
	if len(s.Reports) != 1 || !s.Reports[0].HasStats {
		t.Fatalf("the files kept no exporter statistics: %+v\n%s", s.Reports, exp.Output())
	}
	r := s.Reports[0]
	t.Logf("sent %d packets %d bytes; flows %d with %d packets %d bytes; ignored %d packets %d bytes",
		want.Packets, want.Octets, s.Total.Flows, s.Total.Packets, s.Total.Bytes, r.IgnoredPackets, r.IgnoredOctets)
	if s.Total.Packets+r.IgnoredPackets != want.Packets || s.Total.Bytes+r.IgnoredOctets != want.Octets {
		t.Errorf("flows %d packets %d bytes + ignored %d packets %d bytes != sent %d packets %d bytes",
			s.Total.Packets, s.Total.Bytes, r.IgnoredPackets, r.IgnoredOctets, want.Packets, want.Octets)
	}
	// The paths were taken: more flows than the map holds came through
	// the ring buffer, and the ring buffer overflowed.
	if s.Total.Flows <= 16 || r.IgnoredPackets == 0 {
		t.Errorf("%d flows stored, %d packets ignored: the map-full paths were not taken", s.Total.Flows, r.IgnoredPackets)
	}
	code, text, _ := runQuery(t, "-I", kdir)
	if code != exitOK || !strings.Contains(text, " ignored packets "+strconv.FormatUint(r.IgnoredPackets, 10)+" ") {
		t.Errorf("file query -I does not show the ignored packets:\n%s", text)
	}
	if t.Failed() {
		t.Logf("exporter:\n%s", exp.Output())
		if coll != nil {
			t.Logf("collector:\n%s", coll.Output())
		}
	}
}

// startCollectorIn starts kflow's collector in ns on a free loopback UDP
// port writing into dir, and returns it and its address.
func startCollectorIn(t *testing.T, ns *testenv.NS, bin, dir string) (*testenv.Proc, string) {
	ready := filepath.Join(t.TempDir(), "ready")
	coll := testenv.StartIn(t, ns, bin, "collector", "run", "--dir", dir, "--no-default-listen", "--listen", "udp://127.0.0.1:0",
		"--ready-file", ready, "--flush-interval", "100ms")
	if err := testenv.WaitFile(ready, testenv.Patience, coll); err != nil {
		t.Fatalf("%v\n%s", err, coll.Output())
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(b)) {
		if a, ok := strings.CutPrefix(l, "udp://"); ok {
			return coll, a
		}
	}
	t.Fatalf("no udp:// address in the ready file: %q", b)
	return nil, ""
}

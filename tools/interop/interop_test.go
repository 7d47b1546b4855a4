// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// Every test below runs the kflow binary inside namespace A of a testenv
// Pair, observing A's veth end, and a third-party collector listening on
// A's loopback. Traffic only crosses the veth pair.

// formats are the export formats, named as kflow's -c schemes.
var formats = []string{"ipfix", "nfv9", "nfv5"}

// TestNfcapd exports the standard traffic to nfcapd in each format and
// compares every flow nfdump reads back with the ground truth: packets,
// octets (L3, IP total length), ports, protocol, ICMP type/code, TCP flags,
// direction (IPFIX and v9), IPv4 and IPv6 (IPFIX and v9; v5 carries IPv4
// only, and kflow logs that IPv6 flows are not exportable).
func TestNfcapd(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			p := testenv.NewPair(t)
			const port, repeat = 9995, 9996
			// nfcapd repeats every message it receives to a sink, so the
			// test knows the messages behind nfdump's sequence check.
			sink := startSink(t, p.A, repeat)
			nf := startNfcapd(t, p.A, port, "-R", fmt.Sprintf("127.0.0.1/%d", repeat))
			k := startKflow(t, p, fmt.Sprintf("%s://127.0.0.1:%d", f, port))
			truth := traffic(t, p, sink)
			log := k.stop(t)
			nf.stop(t)
			msgs := sink.stop(t)

			v5 := f == "nfv5"
			recs := readNfdump(t, p, nf.dir, !v5)
			got := nfdumpFlows(t, p, recs, !v5)
			want := fromTruth(truth, truthOpts{dir: !v5, flags: true, v4Only: v5})
			compareFlows(t, "nfdump "+f, got, want)
			checkSequence(t, f, nf.dir, msgs)
			if !v5 {
				// kflow's cgroups (--cgroups, on by default) were in the
				// records nfcapd decoded: applicationId (95), and options
				// records of the names (empty here: under "ip netns exec"
				// kflow sees no cgroup2 mount).
				n := 0
				for _, r := range exportedRecords(t, msgs) {
					if r.CgroupID != 0 {
						n++
					}
				}
				if n == 0 {
					t.Error("no exported record carried a cgroup: nfcapd was not shown kflow's applicationId")
				}
			}
			if v5 {
				if !strings.Contains(log, "NetFlow v5 carries IPv4 only") {
					t.Errorf("kflow did not log that IPv6 flows are not exportable over NetFlow v5:\n%s", log)
				}
				for id := range got {
					if id.Src.Is6() {
						t.Errorf("nfdump nfv5: IPv6 flow %v", id)
					}
				}
			}
		})
	}
}

// checkSequence checks the sequence numbers of the messages nfcapd got:
// nfdump must count no sequence failure in any format. For IPFIX kflow
// numbers flow data records only by default (what nfdump adds up; RFC 7011's
// wording would count options data records too, which kflow does with
// --ipfix-sequence all), so every message's number must be the count of
// flow records sent before it.
func checkSequence(t *testing.T, format, dir string, msgs [][]byte) {
	t.Helper()
	failures := sequenceFailures(t, dir)
	if len(msgs) < 2 {
		t.Errorf("nfcapd received %d messages; the test wants several", len(msgs))
	}
	if failures != 0 {
		t.Errorf("nfdump -I: %d sequence failures in %d %s messages", failures, len(msgs), format)
	}
	if format != "ipfix" {
		return
	}
	ms, err := walkIPFIX(msgs)
	if err != nil {
		t.Fatalf("messages nfcapd received: %v", err)
	}
	var flows uint32
	options := 0
	for i, m := range ms {
		if m.Sequence != flows {
			t.Errorf("IPFIX message %d: sequence %d, want %d (flow records before it)", i, m.Sequence, flows)
		}
		flows += uint32(m.FlowRecords)
		options += m.OptionRecords
	}
	if options == 0 {
		t.Errorf("no options records in %d IPFIX messages: the check proves nothing", len(ms))
	}
	t.Logf("ipfix: %d messages, %d options records, sequence numbers count flow records, nfdump: 0 failures", len(ms), options)
}

// TestTshark captures the export messages kflow sends (a UDP sink on A's
// loopback stands in for the collector and keeps every datagram) and has
// Wireshark's dissector decode them: every message must decode as IPFIX or
// NetFlow v9 with its templates, options templates and data, the interface
// names options record included, without malformed packets or expert
// errors and warnings. Wireshark counts options data records in IPFIX
// sequence numbers (RFC 7011's wording) and warns when they are left out,
// which is kflow's default because nfdump counts flow records only: so
// here kflow runs with --ipfix-sequence all.
func TestTshark(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	for _, f := range formats[:2] {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			testenv.RequireTool(t, "tshark")
			p := testenv.NewPair(t)
			const port = 4739
			sink := startSink(t, p.A, port)
			k := startKflow(t, p, fmt.Sprintf("%s://127.0.0.1:%d", f, port), "--ipfix-sequence", "all")
			truth := traffic(t, p, sink)
			k.stop(t)
			msgs := sink.stop(t)
			checkTshark(t, p, f, port, msgs, truth)
		})
	}
}

// TestNfacctd exports the standard traffic to pmacct's nfacctd, whose
// print plugin writes csv aggregated by addresses, ports and protocol,
// and compares packets and octets of every flow with the ground truth.
func TestNfacctd(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			p := testenv.NewPair(t)
			const port = 2055
			pm := startNfacctd(t, p.A, port)
			k := startKflow(t, p, fmt.Sprintf("%s://127.0.0.1:%d", f, port))
			truth := traffic(t, p, nil)
			k.stop(t)
			// pmacct 1.7.7 takes the destination port of IPFIX and v9
			// records from destinationTransportPort only, not from the
			// ICMP type/code elements kflow uses; NetFlow v5 carries
			// type*256+code in the port.
			v5 := f == "nfv5"
			want := fromTruth(truth, truthOpts{v4Only: v5, noICMPPort: !v5})
			got := pm.waitFlows(t, p, want)
			pm.stop(t)
			compareFlows(t, "nfacctd "+f, got, want)
		})
	}
}

// TestActiveTimeout sends one UDP conversation for longer than the active
// timeout: nfcapd receives each direction as several records (at least
// three) whose packet and octet deltas sum exactly to the truth. The
// conversation goes on until kflow has sent three active-timeout records
// of each direction (read from nfcapd's copies of the messages), however
// long that takes on a busy machine: the test counts what was done, not
// what fits in some time.
func TestActiveTimeout(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	p := testenv.NewPair(t)
	const port, repeat = 9995, 9996
	sink := startSink(t, p.A, repeat)
	nf := startNfcapd(t, p.A, port, "-R", fmt.Sprintf("127.0.0.1/%d", repeat))
	k := startKflow(t, p, fmt.Sprintf("ipfix://127.0.0.1:%d", port), "--active-timeout", "1s", "--idle-timeout", "5s")
	truth := testenv.Truth{}
	start := time.Now()
	// Records of each direction of the conversation in what kflow sent.
	records := func() map[conversation]int {
		n := map[conversation]int{}
		for _, r := range exportedRecords(t, sink.received()) {
			if r.SrcPort == 41000 || r.DstPort == 41000 {
				n[conversationOf(r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort)]++
			}
		}
		return n
	}
	enough := func() bool {
		n := records()
		if len(n) != 2 {
			return false
		}
		for _, c := range n {
			if c < 3 {
				return false
			}
		}
		return true
	}
	deadline := start.Add(testenv.Patience)
	for i := 0; !enough(); i++ {
		if time.Now().After(deadline) || i == 100000 {
			t.Fatalf("after %d exchanges over %v, kflow sent %v active-timeout records; want 3 each way",
				i, time.Since(start).Round(time.Millisecond), records())
		}
		tr, err := p.UDPEcho(false, 41000, 6000, []int{10 + i%1000, 300})
		if err != nil {
			t.Fatal(err)
		}
		for key, c := range tr {
			sum := truth[key]
			sum.Packets += c.Packets
			sum.Octets += c.Octets
			truth[key] = sum
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	k.stop(t)
	nf.stop(t)
	msgs := sink.stop(t)

	recs := readNfdump(t, p, nf.dir, true)
	got := nfdumpFlows(t, p, recs, true)
	compareFlows(t, "nfdump active timeout", got, fromTruth(truth, truthOpts{dir: true, flags: true}))
	for id, c := range got {
		if c.Records < 3 {
			t.Errorf("%v: %d records over %v with a 1s active timeout, want at least 3", id, c.Records, elapsed.Round(time.Millisecond))
		} else {
			t.Logf("%v: %d records summing to %v", id, c.Records, c)
		}
	}
	checkSequence(t, "ipfix", nf.dir, msgs)
}

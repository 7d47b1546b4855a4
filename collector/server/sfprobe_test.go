// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// sFlow in: pmacctd (pmacct 1.7.7) with its sfprobe plugin, an sFlow v5
// agent, watches A's end of a veth pair and sends to kflow's collector.
//
// What the test relies on, from pmacct 1.7.7's source and CONFIG-KEYS:
//   - sfprobe sends one compact flow sample per sampled packet with a raw
//     header record (the first 128 octets of the frame), frame length =
//     captured length + 4 (an FCS it assumes), stripped = 4, the agent
//     address of sfprobe_agentip and the sub-agent id of
//     sfprobe_agentsubid.
//   - Sampling (sampling_rate N) is sfprobe's own: InMon's software
//     sampler, which takes a packet, then skips a number of packets drawn
//     uniformly from 1..2N-1 (mean N) before the next; the core passes
//     every packet to the plugin. Without sampling_rate the rate is 1.
//   - The datagram sequence number counts datagrams from 1 per agent, so
//     the collector knows when one is lost.
//
// kflow counts a sample's IP length (the truth's octets), not its frame
// length: with sampling 1 the flow files equal the truth packet for
// packet and octet for octet.
const sfprobeConfig = `daemonize: false
pcap_interface: %s
promisc: false
plugins: sfprobe
sfprobe_receiver: %s
sfprobe_agentip: %s
sfprobe_agentsubid: 7
%s`

// startSfprobe starts pmacctd's sfprobe in A, exporting to the collector,
// with extra configuration lines.
func startSfprobe(t *testing.T, p *testenv.Pair, c *collector, extra string) *testenv.Proc {
	t.Helper()
	bin := testenv.RequireTool(t, "pmacctd")
	conf := filepath.Join(t.TempDir(), "pmacctd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(sfprobeConfig, p.AIf, c.udp, p.A4, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	pm := testenv.StartIn(t, p.A, bin, "-f", conf)
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return strings.Contains(pm.Output(), "Sampling at") || pm.Exited()
	}) || pm.Exited() {
		t.Fatalf("pmacctd did not start:\n%s", pm.Output())
	}
	return pm
}

// checkSFlowRecords checks that every record names the agent and its
// sub-agent and carries the sampling rate.
func checkSFlowRecords(t *testing.T, p *testenv.Pair, recs []flow.Record, rate uint32) {
	t.Helper()
	for i := range recs {
		r := &recs[i]
		if r.Exporter != p.A4 || r.ObservationDomain != 7 || max(r.SamplingInterval, 1) != rate {
			t.Errorf("%v: exporter %v domain %d sampling %d, want the agent %v, sub-agent 7, sampling %d",
				testenv.KeyOf(r), r.Exporter, r.ObservationDomain, r.SamplingInterval, p.A4, rate)
			return
		}
	}
}

// markerPort is the source port of the datagrams sent after the traffic
// under test: once the collector stores a sample of one, the agent has
// sent every sample before it (it sends them in order; noDatagramLost
// checks that none was lost on the way). Without it the test would stop
// the agent with samples still in its buffer: sfprobe sends a datagram
// when it is full or once a second, and drops what it holds when stopped.
const markerPort = 38000

// waitMarker sends marker datagrams from A to B, each pushed through the
// agent's capture ring, until the collector stores a sample of one.
func waitMarker(t *testing.T, p *testenv.Pair, c *collector) {
	t.Helper()
	sent := 0
	if !testenv.WaitFor(testenv.Patience, func() bool {
		if _, err := p.UDPBlast(false, markerPort, 1, 1, 10); err != nil {
			t.Fatal(err)
		}
		sent++
		flushPcap(t, p, 2000)
		recs, _, _ := readDir(c.dir)
		for i := range recs {
			if recs[i].SrcPort == markerPort {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no marker sample stored within %v (%d sent)", testenv.Patience, sent)
	}
}

// withoutMarker drops the marker flow's records.
func withoutMarker(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for i := range recs {
		if recs[i].SrcPort != markerPort {
			out = append(out, recs[i])
		}
	}
	return out
}

var sequenceGaps = regexp.MustCompile(`kflow collector stopped.* sequence_gaps=(\d+)`)

// noDatagramLost checks the collector's last words: no sFlow datagram
// went missing (the agent's sequence numbers have no gap).
func noDatagramLost(t *testing.T, c *collector) {
	t.Helper()
	m := sequenceGaps.FindStringSubmatch(c.proc.Output())
	if m == nil || m[1] != "0" {
		t.Errorf("collector's sequence gaps: %q, want 0", m)
	}
}

func TestSfprobeIntoCollector(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	c := startCollector(t, p.A)
	pm := startSfprobe(t, p, c, "")
	warmUp(t, p, "pmacctd sfprobe", c.warmUpStored)
	since := time.Now()
	truth := dualTraffic(t, p, 400)
	waitMarker(t, p, c)
	stopPmacctd(t, pm)
	recs := pairFlows(t, p, withoutMarker(withoutWarmUp(c.stop(t))))
	checkSFlowRecords(t, p, recs, 1)
	compareTruth(t, recs, truth, false, since)
	noDatagramLost(t, c)
	if t.Failed() {
		t.Logf("pmacctd output:\n%s\ncollector output:\n%s", pm.Output(), c.proc.Output())
	}
}

// TestSfprobeSampled: one UDP flow of K packets of one size, sampled 1 in
// N by the agent; the collector scales each sample by N.
//
// The bound. The agent samples a packet, then skips S packets, S uniform
// on 1..2N-1 (mean N), independently. With X samples among the K
// packets, the collector stores X*N packets. X >= m+1 needs the m skips
// after the first sample to add up to at most K; X <= m needs the m skips
// after the first sample (which comes within the first 2N-1 packets) to
// add up to more than K-(2N-1). By Hoeffding's inequality for m
// independent skips of range 2N-2, each has probability at most
// exp(-2*d*d/(m*(2N-2)^2)) when d is the distance of m*N from K (or from
// K-(2N-1)). The test allows |X*N - K| <= d + 2N with
// d = (2N-2)*sqrt(m*ln(1e9)/2) and m = K/N+1: it fails by chance with
// probability below 2e-9. Octets must be exactly packets times the
// packet's IP length.
func TestSfprobeSampled(t *testing.T) {
	testenv.RequirePrivileged(t)
	const n, k, size = 10, 20000, 64
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil { // the blast is all the traffic there is
		t.Fatal(err)
	}
	c := startCollector(t, p.A)
	pm := startSfprobe(t, p, c, fmt.Sprintf("sampling_rate: %d\n", n))
	warmUp(t, p, "pmacctd sfprobe", c.warmUpStored)
	// In bursts of 1,000, so that a busy machine gives pmacctd's capture
	// time to keep up (nothing else crosses the veth meanwhile).
	var sent testenv.Counts
	for range k / 1000 {
		truth, err := p.UDPBlast(false, 31000, 1, 1000, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, cnt := range truth {
			sent.Packets += cnt.Packets
			sent.Octets += cnt.Octets
		}
	}
	waitMarker(t, p, c)
	m := float64(k)/n + 1
	d := (2*n - 2) * math.Sqrt(m*math.Log(1e9)/2)
	lo, hi := uint64(math.Floor(float64(sent.Packets)-d-2*n)), uint64(math.Ceil(float64(sent.Packets)+d+2*n))
	stopPmacctd(t, pm)
	recs := pairFlows(t, p, withoutMarker(withoutWarmUp(c.stop(t))))
	checkSFlowRecords(t, p, recs, n)
	var got testenv.Counts
	for _, r := range recs {
		got.Packets += r.Packets
		got.Octets += r.Octets
	}
	t.Logf("sent %d packets of %d octets; stored %d packets %d octets (%d samples); allowed %d..%d packets",
		sent.Packets, size+28, got.Packets, got.Octets, got.Packets/n, lo, hi)
	if sent.Packets != k || got.Packets < lo || got.Packets > hi || got.Packets%n != 0 || got.Octets != got.Packets*(size+28) {
		t.Errorf("stored %d packets %d octets, want a multiple of %d in %d..%d, %d octets each", got.Packets, got.Octets, n, lo, hi, size+28)
	}
	noDatagramLost(t, c)
	if t.Failed() {
		t.Logf("pmacctd output:\n%s\ncollector output:\n%s", pm.Output(), c.proc.Output())
	}
}

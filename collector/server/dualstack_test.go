// SPDX-License-Identifier: Apache-2.0

package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// Third-party probes on a dual-stack veth. IPv6 stays on, so the kernel's
// own IPv6 traffic (multicast listener reports, router solicitations on
// some kernels) crosses the link alongside the test's: the comparison keeps
// only the flows between the pair's own addresses, whose truth the test
// knows, and logs what it left out.

// dualTraffic is traffic() plus IPv6 exchanges: a UDP echo and a ping.
func dualTraffic(t *testing.T, p *testenv.Pair, blast int) testenv.Truth {
	t.Helper()
	truth := traffic(t, p, blast)
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
	add(p.UDPEcho(true, 40061, 7061, []int{10, 100, 1000, 1400}))
	add(p.Ping(true, 4, 56))
	return truth
}

// pairFlows keeps the records between the pair's addresses; the others
// (link-local and multicast housekeeping) are logged and dropped.
func pairFlows(t *testing.T, p *testenv.Pair, recs []flow.Record) []flow.Record {
	t.Helper()
	var out []flow.Record
	for i := range recs {
		r := &recs[i]
		if p.Owns(r.Src) && p.Owns(r.Dst) {
			out = append(out, *r)
			continue
		}
		t.Logf("left out (not between the pair's addresses): %v: %d packets %d octets", testenv.KeyOf(r), r.Packets, r.Octets)
	}
	return out
}

// only4 drops the IPv6 flows of a truth: what NetFlow v5 can carry.
func only4(tr testenv.Truth) testenv.Truth {
	out := testenv.Truth{}
	for k, c := range tr {
		if k.Src.Is4() {
			out[k] = c
		}
	}
	return out
}

// noIPv6 fails the test when a record holds an IPv6 address (NetFlow v5
// has no room for one: a probe must leave IPv6 flows out, not mangle them).
func noIPv6(t *testing.T, recs []flow.Record) {
	t.Helper()
	for i := range recs {
		r := &recs[i]
		if r.Src.Is6() || r.Dst.Is6() {
			t.Errorf("IPv6 flow in a NetFlow v5 export: %v", testenv.KeyOf(r))
		}
	}
}

// softflowdProcessed reads "Packets processed: N" from softflowctl
// statistics; 0 when absent. With IPv6 on, housekeeping packets count too,
// so callers wait for at least the truth's packets.
func softflowdProcessed(stats []byte) uint64 {
	_, rest, ok := strings.Cut(string(stats), "Packets processed: ")
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]), 10, 64)
	return n
}

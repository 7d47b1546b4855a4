// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestGroupFamilies checks on random mixes that grouping keeps every
// record once, IPv4 before IPv6, each family in its order, pairs whole.
func TestGroupFamilies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		pairs := trial%2 == 1
		n := rng.IntN(40)
		if pairs {
			n -= n % 2
		}
		recs := make([]flow.Record, n)
		for i := range recs {
			src := netip.AddrFrom4([4]byte{198, 18, 0, 1})
			if (pairs && rng.IntN(3) == 0 && i%2 == 0) || (!pairs && rng.IntN(3) == 0) {
				src = netip.MustParseAddr("fd00::1")
			}
			if pairs && i%2 == 1 {
				src = recs[i-1].Src // a pair shares its family
			}
			recs[i] = flow.Record{Src: src, Packets: uint64(i)} // Packets: the position
		}
		orig := append([]flow.Record(nil), recs...)
		got := GroupFamilies(recs, pairs)
		for i := range recs {
			if recs[i].Packets != orig[i].Packets {
				t.Fatalf("trial %d: the input changed at %d", trial, i)
			}
		}
		if len(got) != n {
			t.Fatalf("trial %d: %d records, want %d", trial, len(got), n)
		}
		var want []flow.Record
		step := 1
		if pairs {
			step = 2
		}
		for _, v6 := range []bool{false, true} {
			for i := 0; i < n; i += step {
				if orig[i].Src.Is6() == v6 {
					want = append(want, orig[i:i+step]...)
				}
			}
		}
		for i := range want {
			if got[i].Packets != want[i].Packets {
				t.Fatalf("trial %d (pairs %v): record %d is input %d, want input %d", trial, pairs, i, got[i].Packets, want[i].Packets)
			}
		}
	}
}

// TestGroupFamiliesGrouped: a batch grouped already is returned as is.
func TestGroupFamiliesGrouped(t *testing.T) {
	v4 := flow.Record{Src: netip.AddrFrom4([4]byte{198, 18, 0, 1})}
	v6 := flow.Record{Src: netip.MustParseAddr("fd00::1")}
	for _, recs := range [][]flow.Record{nil, {v4, v4}, {v6, v6}, {v4, v6, v6}} {
		got := GroupFamilies(recs, false)
		if len(recs) > 0 && &got[0] != &recs[0] {
			t.Errorf("%d records grouped already were copied", len(recs))
		}
	}
	if got := GroupFamilies([]flow.Record{v6, v4}, false); !got[0].Src.Is4() || !got[1].Src.Is6() {
		t.Errorf("IPv6 then IPv4 not regrouped: %v %v", got[0].Src, got[1].Src)
	}
}

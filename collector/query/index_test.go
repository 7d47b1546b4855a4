// SPDX-License-Identifier: Apache-2.0

package query

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestValueIndexAddrs: the address index numbers distinct addresses
// densely in order of first sight, as a map would, over IPv4, IPv6,
// IPv4-mapped IPv6 and zoned addresses and its tables' growth.
func TestValueIndexAddrs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := newValueIndex(true)
	want := map[netip.Addr]int32{}
	for range 200000 {
		var a netip.Addr
		switch rng.IntN(5) {
		case 0, 1:
			a = netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))})
		case 2:
			a = netip.AddrFrom16([16]byte{0: 0xfd, 7: byte(rng.IntN(4)), 14: byte(rng.IntN(256)), 15: byte(rng.IntN(256))})
		case 3:
			a = netip.AddrFrom16(netip.AddrFrom4([4]byte{198, 18, 0, byte(rng.IntN(256))}).As16())
		default:
			a = netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: byte(rng.IntN(8))}).WithZone([]string{"eth0", "eth1"}[rng.IntN(2)])
		}
		if rng.IntN(50) == 0 {
			a = netip.Addr{}
		}
		i, added := x.addr(a)
		w, ok := want[a]
		if !ok {
			w = int32(len(want))
			want[a] = w
		}
		if i != w || added == ok {
			t.Fatalf("%v: index %d (added %v), want %d (added %v)", a, i, added, w, !ok)
		}
	}
	got := map[netip.Addr]int32{}
	x.each(func(v Value, i int32) {
		if _, dup := got[v.Addr]; dup {
			t.Errorf("each: %v twice", v.Addr)
		}
		got[v.Addr] = i
	})
	if !maps.Equal(got, want) {
		t.Errorf("each gives %d addresses, want %d (or other indexes)", len(got), len(want))
	}
	if len(want) < 60000 {
		t.Errorf("only %d distinct addresses: the tables did not grow much", len(want))
	}
}

// SPDX-License-Identifier: Apache-2.0

package query

import (
	"encoding/binary"
	"net/netip"
)

// valueIndex numbers the values of one element densely, in order of first
// sight: statistics and series keep their counters in slices indexed by
// it. Numbers below 65536 (ports, protocols, flags, ...) go through a
// table; IPv4 and IPv6 addresses through open-addressing hash tables of
// their bits (a map and a cache in front of it took twice as long: each
// block's addresses are looked up once per block); other values through
// maps.
type valueIndex struct {
	n      int32
	strs   bool    // an index of strings (idents), through m
	isAddr bool    // an index of addresses
	dense  []int32 // 1 + index, by number below its length, grown on demand
	m      map[Value]int32
	addrs  map[netip.Addr]int32
	v4     []v4Slot // len a power of two, at most three quarters full
	v4n    int
	v6     []v6Slot // the same for IPv6 addresses without a zone
	v6n    int
}

type v4Slot struct {
	key uint32
	i   int32 // 1 + index; 0: empty
}

func newValueIndex(addresses bool) *valueIndex {
	x := &valueIndex{m: make(map[Value]int32), isAddr: addresses}
	if addresses {
		x.addrs = make(map[netip.Addr]int32)
		x.v4 = make([]v4Slot, 1024)
	}
	return x
}

func v4Key(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// v4Hash spreads an IPv4 address over the table's bits.
func v4Hash(k uint32) uint32 { return uint32(uint64(k) * 0x9e3779b97f4a7c15 >> 32) }

// addr returns the index of an address; added is true when it is new.
func (x *valueIndex) addr(a netip.Addr) (i int32, added bool) {
	if a.Is4() {
		k := v4Key(a)
		mask := uint32(len(x.v4) - 1)
		for h := v4Hash(k) & mask; ; h = (h + 1) & mask {
			s := &x.v4[h]
			if s.i == 0 {
				i = x.n
				x.n++
				*s = v4Slot{k, i + 1}
				if x.v4n++; 4*x.v4n > 3*len(x.v4) {
					x.growV4()
				}
				return i, true
			}
			if s.key == k {
				return s.i - 1, false
			}
		}
	}
	if a.Is6() && a.Zone() == "" {
		return x.addr6(a)
	}
	i, ok := x.addrs[a]
	if !ok {
		i = x.n
		x.n++
		x.addrs[a] = i
	}
	return i, !ok
}

// addr6 is addr for IPv6 addresses without a zone: an open-addressing
// table of their 128 bits.
func (x *valueIndex) addr6(a netip.Addr) (i int32, added bool) {
	if x.v6 == nil {
		x.v6 = make([]v6Slot, 1024)
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	mask := uint64(len(x.v6) - 1)
	for h := v6Hash(hi, lo) & mask; ; h = (h + 1) & mask {
		s := &x.v6[h]
		if s.i == 0 {
			i = x.n
			x.n++
			*s = v6Slot{hi, lo, i + 1}
			if x.v6n++; 4*x.v6n > 3*len(x.v6) {
				x.growV6()
			}
			return i, true
		}
		if s.hi == hi && s.lo == lo {
			return s.i - 1, false
		}
	}
}

type v6Slot struct {
	hi, lo uint64
	i      int32 // 1 + index; 0: empty
}

func v6Hash(hi, lo uint64) uint64 { return (hi*0x9e3779b97f4a7c15 ^ lo) * 0xff51afd7ed558ccd >> 32 }

// growV6 doubles the IPv6 table.
func (x *valueIndex) growV6() {
	old := x.v6
	x.v6 = make([]v6Slot, 2*len(old))
	mask := uint64(len(x.v6) - 1)
	for _, s := range old {
		if s.i == 0 {
			continue
		}
		h := v6Hash(s.hi, s.lo) & mask
		for x.v6[h].i != 0 {
			h = (h + 1) & mask
		}
		x.v6[h] = s
	}
}

// growV4 doubles the IPv4 table.
func (x *valueIndex) growV4() {
	old := x.v4
	x.v4 = make([]v4Slot, 2*len(old))
	mask := uint32(len(x.v4) - 1)
	for _, s := range old {
		if s.i == 0 {
			continue
		}
		h := v4Hash(s.key) & mask
		for x.v4[h].i != 0 {
			h = (h + 1) & mask
		}
		x.v4[h] = s
	}
}

// num returns the index of a number; added is true when it is new.
func (x *valueIndex) num(n uint32) (i int32, added bool) {
	if n < 1<<16 {
		if int(n) >= len(x.dense) {
			x.growDense(n)
		}
		if i = x.dense[n] - 1; i >= 0 {
			return i, false
		}
		i = x.n
		x.n++
		x.dense[n] = i + 1
		return i, true
	}
	v := Value{Num: n}
	i, ok := x.m[v]
	if !ok {
		i = x.n
		x.n++
		x.m[v] = i
	}
	return i, !ok
}

// growDense makes the dense table hold n: a power of two from 256 up to
// 65,536 entries, so that an index of protocols or flags holds 1 KiB, not
// the 256 KiB every port takes.
func (x *valueIndex) growDense(n uint32) {
	l := max(256, 2*len(x.dense))
	for l <= int(n) {
		l *= 2
	}
	d := make([]int32, l)
	copy(d, x.dense)
	x.dense = d
}

// str returns the index of a string; added is true when it is new.
func (x *valueIndex) str(s string) (int32, bool) {
	v := Value{Str: s}
	i, ok := x.m[v]
	if !ok {
		i = x.n
		x.n++
		x.m[v] = i
	}
	return i, !ok
}

// value returns the index of a value of the element the index was made
// for.
func (x *valueIndex) value(v Value) (int32, bool) {
	if x.strs {
		return x.str(v.Str)
	}
	if x.isAddr {
		return x.addr(v.Addr)
	}
	return x.num(v.Num)
}

// each calls f with every value of the index and its index.
func (x *valueIndex) each(f func(v Value, i int32)) {
	for n, j := range x.dense {
		if j != 0 {
			f(Value{Num: uint32(n)}, j-1)
		}
	}
	for v, i := range x.m {
		f(v, i)
	}
	for a, i := range x.addrs {
		f(Value{Addr: a}, i)
	}
	for _, s := range x.v4 {
		if s.i != 0 {
			f(Value{Addr: netip.AddrFrom4([4]byte{byte(s.key >> 24), byte(s.key >> 16), byte(s.key >> 8), byte(s.key)})}, s.i-1)
		}
	}
	for _, s := range x.v6 {
		if s.i != 0 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], s.hi)
			binary.BigEndian.PutUint64(b[8:], s.lo)
			f(Value{Addr: netip.AddrFrom16(b)}, s.i-1)
		}
	}
}

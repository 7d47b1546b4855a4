// SPDX-License-Identifier: Apache-2.0

package query

import "net/netip"

// valueIndex numbers the values of one element densely, in order of first
// sight: statistics and series keep their counters in slices indexed by
// it. Numbers below 65536 (ports, protocols, flags, ...) go through a
// table; IPv4 addresses through a map of uint32 with a direct-mapped cache
// in front, which spares most lookups (a few addresses make most flows);
// other values through maps.
type valueIndex struct {
	n     int32
	strs  bool    // an index of strings (idents), through m
	dense []int32 // 1 + index, by number; nil for addresses
	m     map[Value]int32
	addrs map[netip.Addr]int32
	v4    map[uint32]int32
	v4c   *[v4CacheSize]v4Slot
}

const v4CacheSize = 4096

type v4Slot struct {
	key uint32
	i   int32 // 1 + index; 0: empty
}

func newValueIndex(addresses bool) *valueIndex {
	x := &valueIndex{m: make(map[Value]int32)}
	if addresses {
		x.addrs = make(map[netip.Addr]int32)
		x.v4 = make(map[uint32]int32)
		x.v4c = new([v4CacheSize]v4Slot)
	} else {
		x.dense = make([]int32, 1<<16)
	}
	return x
}

func v4Key(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// addr returns the index of an address; added is true when it is new.
func (x *valueIndex) addr(a netip.Addr) (i int32, added bool) {
	if a.Is4() {
		k := v4Key(a)
		slot := &x.v4c[(k*0x9e3779b1)>>(32-12)]
		if slot.i != 0 && slot.key == k {
			return slot.i - 1, false
		}
		i, ok := x.v4[k]
		if !ok {
			i = x.n
			x.n++
			x.v4[k] = i
		}
		*slot = v4Slot{k, i + 1}
		return i, !ok
	}
	i, ok := x.addrs[a]
	if !ok {
		i = x.n
		x.n++
		x.addrs[a] = i
	}
	return i, !ok
}

// num returns the index of a number; added is true when it is new.
func (x *valueIndex) num(n uint32) (i int32, added bool) {
	if n < 1<<16 {
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
	if x.dense == nil {
		return x.addr(v.Addr)
	}
	return x.num(v.Num)
}

// SPDX-License-Identifier: Apache-2.0

package cache

// Entries live in fixed-size chunks and are named by a uint32 entry number,
// so that the index and the wheel link entries with 4-byte numbers instead
// of pointers, the chunks hold no pointers for the garbage collector to
// scan, and growth never copies or doubles the entry storage. Freed entries
// go on a free list and are reused; storage is kept at its high-water mark
// (bounded by Config.MaxFlows) until Flush.
//
// The timing wheel orders entries by deadline (entry.due) in buckets of
// 2^tickShift ns (about 1.07 s); bucket b holds the entries whose deadline
// tick is b modulo wheelSize. Each bucket is a circular doubly linked list
// whose head is a sentinel link numbered headBase+b, so an entry can be
// unlinked without knowing its bucket. The wheel is lazy: when a merge
// pushes a deadline later, the entry stays where it is and Expire moves it
// when its old bucket comes due; only a deadline that moves earlier (TCP
// FIN/RST seen, an earlier start) relinks at once. An entry therefore sits
// in a bucket at or before its deadline tick (or in the cursor's bucket),
// which is what Expire and the eviction rely on.

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1

	tickShift = 30 // 2^30 ns ≈ 1.07 s per bucket
	wheelBits = 8
	wheelSize = 1 << wheelBits // ≈ 275 s before the wheel wraps
	wheelMask = wheelSize - 1

	headBase = 1 << 31      // link numbers >= headBase are bucket heads
	noEntry  = ^uint32(0)   // end of the free list
	maxFlows = headBase - 1 // entry numbers stay below headBase
)

type links struct {
	prev, next uint32
}

func tickOf(ns int64) int64 { return ns >> tickShift }

func (c *Cache) entry(idx uint32) *entry {
	return &c.chunks[idx>>chunkBits][idx&chunkMask]
}

func (c *Cache) link(x uint32) *links {
	if x >= headBase {
		return &c.wheel[x-headBase]
	}
	return &c.entry(x).lk
}

// alloc returns the number of an unused entry.
func (c *Cache) alloc() uint32 {
	if c.free != noEntry {
		idx := c.free
		c.free = c.entry(idx).lk.next
		return idx
	}
	if c.used == uint32(len(c.chunks))<<chunkBits {
		c.chunks = append(c.chunks, make([]entry, chunkSize))
		if c.biflow {
			c.rev = append(c.rev, make([]counts, chunkSize))
		}
	}
	idx := c.used
	c.used++
	return idx
}

func (c *Cache) release(idx uint32) {
	e := c.entry(idx)
	*e = entry{}
	if c.biflow {
		*c.revOf(idx) = counts{}
	}
	e.lk.next = c.free
	c.free = idx
}

func (c *Cache) initWheel() {
	for b := range c.wheel {
		h := uint32(headBase + b)
		c.wheel[b] = links{prev: h, next: h}
	}
}

// schedule links entry idx at the tail of the bucket for its deadline, or of
// the cursor's bucket when the deadline tick has already been passed.
func (c *Cache) schedule(idx uint32, e *entry) {
	t := tickOf(e.due)
	if t < c.cursor {
		t = c.cursor
	}
	h := uint32(headBase + t&wheelMask)
	head := &c.wheel[t&wheelMask]
	tail := head.prev
	e.lk = links{prev: tail, next: h}
	c.link(tail).next = idx
	head.prev = idx
}

func (c *Cache) unlink(e *entry) {
	c.link(e.lk.prev).next = e.lk.next
	c.link(e.lk.next).prev = e.lk.prev
}

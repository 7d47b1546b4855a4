// SPDX-License-Identifier: Apache-2.0

package cache

// The index maps keys to entry numbers. It is an open-addressing hash table
// with linear probing over a power-of-two slice of uint64 slots: the high 32
// bits of a slot hold the key's 32-bit hash, the low 32 bits the entry number
// plus one, and zero marks an empty slot. Keeping the hash in the slot lets a
// probe skip foreign keys without touching their entries and lets the table
// grow without rehashing keys. Deletion shifts the following slots back
// (no tombstones), so probe chains never degrade under churn.
//
// At a load factor between 3/8 and 3/4 the index costs 11 to 21 bytes per
// flow, against 48 to 96 for a Go map from key to entry number.

const (
	minSlots   = 1 << 10
	maxLoadNum = 3 // grow past 3/4 full
	maxLoadDen = 4
)

type index struct {
	slots []uint64
	mask  uint32
	n     int
}

func (ix *index) init(slots int) {
	ix.slots = make([]uint64, slots)
	ix.mask = uint32(slots - 1)
	ix.n = 0
}

// find returns the entry number for k with hash h, or the slot where k would
// be inserted and found=false.
func (c *Cache) find(k *key, h uint32) (idx uint32, pos uint32, found bool) {
	ix := &c.ix
	pos = h & ix.mask
	for {
		s := ix.slots[pos]
		if s == 0 {
			return 0, pos, false
		}
		if uint32(s>>32) == h {
			idx = uint32(s) - 1
			if c.entry(idx).key == *k {
				return idx, pos, true
			}
		}
		pos = (pos + 1) & ix.mask
	}
}

// insertAt stores entry idx with hash h in the empty slot pos that find
// returned, growing the table when it gets too full.
func (c *Cache) insertAt(pos uint32, h uint32, idx uint32) {
	ix := &c.ix
	ix.slots[pos] = uint64(h)<<32 | uint64(idx+1)
	ix.n++
	if ix.n*maxLoadDen > len(ix.slots)*maxLoadNum {
		ix.grow()
	}
}

func (ix *index) grow() {
	old := ix.slots
	ix.slots = make([]uint64, 2*len(old))
	ix.mask = uint32(len(ix.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		pos := uint32(s>>32) & ix.mask
		for ix.slots[pos] != 0 {
			pos = (pos + 1) & ix.mask
		}
		ix.slots[pos] = s
	}
}

// remove deletes entry idx, whose key hashes to h, from the index.
func (ix *index) remove(h uint32, idx uint32) {
	want := uint64(h)<<32 | uint64(idx+1)
	i := h & ix.mask
	for ix.slots[i] != want {
		i = (i + 1) & ix.mask
	}
	// Backward-shift deletion: move later members of the probe chain into
	// the hole unless their home slot lies cyclically in (i, j].
	j := i
	for {
		j = (j + 1) & ix.mask
		s := ix.slots[j]
		if s == 0 {
			break
		}
		home := uint32(s>>32) & ix.mask
		if (j-home)&ix.mask >= (j-i)&ix.mask {
			ix.slots[i] = s
			i = j
		}
	}
	ix.slots[i] = 0
	ix.n--
}

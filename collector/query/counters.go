// SPDX-License-Identifier: Apache-2.0

package query

// counters are a statistic's counters, by index: the first 4,096 in one
// slice grown by doubling, the others in chunks of 4,096 that never move.
// One slice grown by doubling to every value copied each counter again
// at each growth and touched twice the memory the counters take (a
// statistic by source address of a million flows: 2.6 of 6 ms of CPU per
// scan worker went to those copies and their page faults); a chunk is
// fresh memory touched only as it fills.
type counters struct {
	chunks [][]Counter
	n      int
}

const (
	counterShift = 12
	counterChunk = 1 << counterShift
)

// at returns counter i (< len).
func (c *counters) at(i int32) *Counter {
	return &c.chunks[i>>counterShift][i&(counterChunk-1)]
}

func (c *counters) len() int { return c.n }

// push adds a zero counter.
func (c *counters) push() {
	switch k := c.n >> counterShift; {
	case k == len(c.chunks) && k == 0:
		c.chunks = append(c.chunks, make([]Counter, 0, 64))
	case k == len(c.chunks):
		c.chunks = append(c.chunks, make([]Counter, 0, counterChunk))
	case k == 0 && len(c.chunks[0]) == cap(c.chunks[0]):
		grown := make([]Counter, len(c.chunks[0]), 2*cap(c.chunks[0]))
		copy(grown, c.chunks[0])
		c.chunks[0] = grown
	}
	k := c.n >> counterShift
	c.chunks[k] = append(c.chunks[k], Counter{})
	c.n++
}

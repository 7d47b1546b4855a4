// SPDX-License-Identifier: Apache-2.0

package query

import "testing"

// TestCounters: counters keep each index's counter across the first
// chunk's growth and past it, in several chunks.
func TestCounters(t *testing.T) {
	var c counters
	const n = 3*counterChunk + 77
	for i := range n {
		c.push()
		c.at(int32(i)).Flows = uint64(i) + 1
		if i%1000 == 0 {
			for j := 0; j <= i; j += 97 {
				if got := c.at(int32(j)).Flows; got != uint64(j)+1 {
					t.Fatalf("after %d pushes: counter %d holds %d", i+1, j, got)
				}
			}
		}
	}
	if c.len() != n || len(c.chunks) != 4 || cap(c.chunks[0]) != counterChunk {
		t.Fatalf("len %d, %d chunks, first of %d", c.len(), len(c.chunks), cap(c.chunks[0]))
	}
	for i := range n {
		if got := c.at(int32(i)).Flows; got != uint64(i)+1 {
			t.Fatalf("counter %d holds %d", i, got)
		}
	}
}

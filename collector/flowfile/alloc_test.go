// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/synthflow"
)

// TestWriterSteadyAllocations checks that once its buffers are grown, a
// writer allocates next to nothing per block: in a collector every
// buffer regrown leaves garbage that stays resident until the next
// collection. Block sizes vary by a percent or two from block to block;
// this would fail if each variation copied the columns again.
func TestWriterSteadyAllocations(t *testing.T) {
	const blocks = 16
	recs := synthflow.Distinct(blocks*DefaultBlockRecords, time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC))
	w, err := NewWriter(io.Discard, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var ms runtime.MemStats
	for b := range blocks {
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		for i := b * DefaultBlockRecords; i < (b+1)*DefaultBlockRecords; i++ {
			if err := w.Append(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&ms)
		// The first two blocks grow the buffers (the second is the
		// first compressed and written).
		if got := ms.TotalAlloc - before; b >= 2 && got > 4096 {
			t.Errorf("block %d: the writer allocated %d bytes", b, got)
		}
	}
}

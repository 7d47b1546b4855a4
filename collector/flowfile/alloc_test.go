// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/synthflow"
)

// allocChildEnv marks the child process that runs
// TestWriterSteadyAllocations alone.
const allocChildEnv = "KFLOW_ALLOC_TEST_CHILD"

// TestWriterSteadyAllocations checks that once its buffers are grown, a
// writer allocates next to nothing per block: in a collector every
// buffer regrown leaves garbage that stays resident until the next
// collection. Block sizes vary by a percent or two from block to block;
// this would fail if each variation copied the columns again.
//
// The allocation counter is the process's: a goroutine another test left
// behind, or a finalizer, allocating meanwhile would count as the
// writer's. So the test runs alone in a child process of the test binary.
func TestWriterSteadyAllocations(t *testing.T) {
	if os.Getenv(allocChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterSteadyAllocations$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), allocChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestWriterSteadyAllocations") {
			t.Fatalf("the child process did not run the test:\n%s", out)
		}
		return
	}
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

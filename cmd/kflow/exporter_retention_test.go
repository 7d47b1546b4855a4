// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestExporterEmbeddedRetention: with no --collector, the exporter's own
// flow files get --max-age at each rotation, like the collector's.
func TestExporterEmbeddedRetention(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.KflowBinary(t)
	p := testenv.NewPair(t)
	dir := filepath.Join(t.TempDir(), "flows")
	// Files of 3 days and of 1 hour ago: the first is past --max-age 2d.
	files := writeFlowFiles(t, dir, "kflow", 72, 1)
	ready := filepath.Join(t.TempDir(), "ready")
	proc := testenv.StartIn(t, p.A, bin, "exporter", "run", "-i", p.AIf, "--pin-dir", "", "--dir", dir,
		"--rotate", "1s", "--max-age", "2d", "--ready-file", ready, "--drain-interval", "100ms")
	if err := testenv.WaitFile(ready, testenv.Patience, proc); err != nil {
		t.Fatalf("exporter not ready: %v\n%s", err, proc.Output())
	}
	// A rotation happens every second; testenv.Patience is the hang guard.
	gone := testenv.WaitFor(testenv.Patience, func() bool {
		_, err := os.Stat(files[0])
		return os.IsNotExist(err)
	})
	if err := proc.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("exporter: %v\n%s", err, proc.Output())
	}
	if !gone || !strings.Contains(proc.Output(), "flow file expired") || !strings.Contains(proc.Output(), filepath.Base(files[0])) {
		t.Errorf("the 3-day-old file was not expired:\n%s", proc.Output())
	}
	if _, err := os.Stat(files[1]); err != nil {
		t.Errorf("the recent file went: %v", err)
	}
}

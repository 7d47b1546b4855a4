// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
)

// TestExporterFilterError: a bad capture filter is a usage error that
// shows the filter with a caret under the offending token, before
// anything is loaded.
func TestExporterFilterError(t *testing.T) {
	code, _, stderr := runCLI(t, "exporter", "run", "--filter", "tcp and ether host 02:00:00:00:00:01", "-c", "ipfix://127.0.0.1:9")
	if code != 2 {
		t.Errorf("exit code %d, want 2 (usage)", code)
	}
	for _, want := range []string{"unsupported primitive \"ether\"", "tcp and ether host", "        ^^^^^"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestExporterBiflowNetFlow: --biflow with a NetFlow collector is refused
// with the reason.
func TestExporterBiflowNetFlow(t *testing.T) {
	for _, c := range []string{"nfv9://127.0.0.1:9", "nfv5://127.0.0.1:9"} {
		code, _, stderr := runCLI(t, "exporter", "run", "--biflow", "-c", "ipfix://127.0.0.1:9", "-c", c)
		if code != 2 || !strings.Contains(stderr, "biflows (RFC 5103) exist in IPFIX only") {
			t.Errorf("%s: exit %d, stderr %q", c, code, stderr)
		}
	}
}

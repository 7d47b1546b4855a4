// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeanDependencies: kflow-query starts fast because it links only the
// query stack. Each of these packages (and what it pulls in) would add its
// initialisation and page faults to every query.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 || !strings.Contains(string(out), "github.com/kflow-dev/kflow/collector/query\n") {
		t.Fatalf("go list -deps printed %d packages, without the query library: %s", len(deps), out)
	}
	for _, d := range deps {
		for _, heavy := range []string{
			"github.com/cilium/ebpf", "github.com/vishvananda/", "github.com/kflow-dev/kflow/bpf",
			"github.com/kflow-dev/kflow/exporter/agent", "github.com/kflow-dev/kflow/collector/chquery",
			"github.com/kflow-dev/kflow/collector/clickhouse", "github.com/kflow-dev/kflow/collector/web",
			"net/http", "crypto/tls",
		} {
			if strings.HasPrefix(d, heavy) {
				t.Errorf("kflow-query links %s", d)
			}
		}
	}
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// TestQueryCgroups: file query filters on a unit, counts by unit and
// container, and prints the cgroup's tags and JSON fields.
func TestQueryCgroups(t *testing.T) {
	dir := t.TempDir()
	recs := queryRecords()
	id := strings.Repeat("0f", 32)
	var nginxBytes uint64
	for i := range recs {
		switch i % 3 {
		case 0:
			recs[i].CgroupID, recs[i].Cgroup = 11, "/system.slice/nginx.service"
			nginxBytes += recs[i].Octets
		case 1:
			recs[i].CgroupID, recs[i].Cgroup = 12, "/system.slice/docker-"+id+".scope"
		}
	}
	writeRecords(t, filepath.Join(dir, "kflow.202503140925"), flowfile.WriterOptions{Ident: "test", Created: time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC)}, recs)
	code, out, errOut := runQuery(t, "-R", dir, "-s", "unit/bytes", "-s", "container/bytes", "-n", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"nginx.service", "docker-" + id + ".scope", id, "Unit", "Container"} {
		if !strings.Contains(out, want) {
			t.Errorf("-s unit, container: no %q in\n%s", want, out)
		}
	}
	code, out, errOut = runQuery(t, "-R", dir, "-o", "fmt:%byt %unit %app", "-N", "unit nginx")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sum uint64
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[1] == "nginx.service" && f[2] == "nginx.service" {
			sum += parseU(t, f[0])
		}
	}
	if sum != nginxBytes {
		t.Errorf("unit nginx: %d bytes in nginx.service lines, want %d:\n%s", sum, nginxBytes, out)
	}
	code, out, _ = runQuery(t, "-R", dir, "-j", "container "+id[:12])
	if code != 0 || !strings.Contains(out, `"container":"`+id+`"`) || strings.Contains(out, "nginx") {
		t.Errorf("container %s as JSON:\n%s", id[:12], out)
	}
}

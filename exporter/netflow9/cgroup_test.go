// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// TestCgroups: with Config.Cgroups the records carry APPLICATION_TAG and
// the options records the names, decoded back exactly (a path longer
// than AppDescLen cut); Wireshark decodes them without a warning.
func TestCgroups(t *testing.T) {
	id := strings.Repeat("ab", 32)
	recs := []flow.Record{recordV4(), recordV6(), recordV4()}
	recs[0].CgroupID, recs[0].Cgroup = 4242, "/system.slice/nginx.service"
	recs[1].CgroupID, recs[1].Cgroup = 7, "/system.slice/docker-"+id+".scope"
	recs[2].SrcPort++
	long := recordV6()
	long.SrcPort++
	long.CgroupID, long.Cgroup = 9, "/"+strings.Repeat("y", 300)
	recs = append(recs, long)
	e := newEncoder(t, Config{SourceID: 7, Cgroups: true}, &wiretest.Clock{T: t0})
	var s wiretest.Sink
	if _, err := e.Encode(recs, s.Emit); err != nil {
		t.Fatal(err)
	}
	got, _ := wiretest.DecodeAll(t, newSession(wire.Limits{}), s.Bytes())
	if len(got.Records) != len(recs) {
		t.Fatalf("%d records, want %d", len(got.Records), len(recs))
	}
	for i, w := range recs {
		wantPath := w.Cgroup[:min(len(w.Cgroup), AppDescLen)]
		if g := got.Records[i]; g.CgroupID != w.CgroupID || g.Cgroup != wantPath {
			t.Errorf("record %d: cgroup %d %q, want %d %q", i, g.CgroupID, g.Cgroup, w.CgroupID, wantPath)
		}
	}
	out := wiretest.Tshark(t, 2055, s.Bytes())
	wiretest.Contains(t, out, "SrcAddr: 198.18.0.1", "ApplicationName: nginx.service", "ApplicationDesc: /system.slice/nginx.service")
}

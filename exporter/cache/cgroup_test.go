// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestCgroupPairing: an ingress flow takes the cgroup of its egress
// direction on the same interface whichever comes first; a later delta
// without a cgroup keeps the known one; a flow without an egress
// direction (forwarded, or another interface) has none; without
// Config.Cgroups nothing is paired.
func TestCgroupPairing(t *testing.T) {
	egress := func(first time.Duration, id uint64) flow.Record {
		r := tcp(first, first, 1, flow.TCPAck)
		r.Direction, r.InIf, r.OutIf, r.CgroupID = flow.Egress, 0, 3, id
		return r
	}
	ingress := func(first time.Duration, ifindex uint32) flow.Record {
		r := tcp(first, first, 1, flow.TCPAck)
		r.Src, r.Dst, r.SrcPort, r.DstPort = r.Dst, r.Src, r.DstPort, r.SrcPort
		r.InIf = ifindex
		return r
	}
	s := time.Second
	for _, c := range []struct {
		name   string
		on     bool
		deltas [][]flow.Record // one drain each
		want   map[string]uint64
	}{
		{"egress first", true, [][]flow.Record{{egress(0, 7), ingress(0, 3)}}, map[string]uint64{"egress": 7, "ingress 3": 7}},
		{"ingress first", true, [][]flow.Record{{ingress(0, 3), egress(0, 7)}}, map[string]uint64{"egress": 7, "ingress 3": 7}},
		{"later drain", true, [][]flow.Record{{ingress(0, 3)}, {egress(s, 7)}, {egress(2*s, 0), ingress(2*s, 3)}}, map[string]uint64{"egress": 7, "ingress 3": 7}},
		{"other interface", true, [][]flow.Record{{egress(0, 7), ingress(0, 4)}}, map[string]uint64{"egress": 7, "ingress 4": 0}},
		{"off", false, [][]flow.Record{{egress(0, 7), ingress(0, 3)}}, map[string]uint64{"egress": 7, "ingress 3": 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := newCache(t, Config{Cgroups: c.on})
			var out sink
			for _, ds := range c.deltas {
				cc.Merge(ds, out.emit)
			}
			cc.Flush(out.emit)
			got := map[string]uint64{}
			for _, r := range out {
				name := "egress"
				if r.Direction == flow.Ingress {
					name = fmt.Sprintf("ingress %d", r.InIf)
				}
				got[name] = r.CgroupID
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("cgroups %v, want %v", got, c.want)
			}
		})
	}
}

// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// cgroupRecords are records of three cgroups and one without.
func cgroupRecords() []flow.Record {
	id := strings.Repeat("ab", 32)
	recs := []flow.Record{recordV4(), recordV6(), recordV4(), recordV6()}
	recs[0].CgroupID, recs[0].Cgroup = 4242, "/system.slice/nginx.service"
	recs[1].CgroupID, recs[1].Cgroup = 1<<40+7, "/system.slice/docker-"+id+".scope"
	recs[2].SrcPort++
	recs[3].CgroupID, recs[3].Cgroup = 99, "/"+strings.Repeat("x", 300) // a long path
	return recs
}

// TestCgroupRoundTrip: with Config.Cgroups every record carries its
// cgroup id in applicationId, the options records its path, decoded
// back exactly; a refresh announces them again, and a later new cgroup
// is announced before its first record.
func TestCgroupRoundTrip(t *testing.T) {
	for _, biflow := range []bool{false, true} {
		clk := &wiretest.Clock{T: t0}
		e := newEncoder(t, Config{ObservationDomain: 7, Cgroups: true, Biflow: biflow}, clk)
		recs := cgroupRecords()
		if biflow {
			// Pairs: the responder shares its initiator's socket.
			var pairs []flow.Record
			for _, r := range recs {
				rr := r
				rr.Src, rr.Dst = r.Dst, r.Src
				rr.SrcPort, rr.DstPort = r.DstPort, r.SrcPort
				rr.Direction = r.Direction ^ 1
				pairs = append(pairs, r, rr)
			}
			recs = pairs
		}
		sess := newSession(wire.Limits{})
		var s wiretest.Sink
		if _, err := e.Encode(recs, s.Emit); err != nil {
			t.Fatal(err)
		}
		late := recordV4()
		late.DstPort++
		late.CgroupID, late.Cgroup = 5, "/user.slice/user-1000.slice/session-3.scope"
		later := []flow.Record{late}
		if biflow {
			later = append(later, late)
		}
		clk.Advance(1)
		if _, err := e.Encode(later, s.Emit); err != nil {
			t.Fatal(err)
		}
		got, _ := wiretest.DecodeAll(t, sess, s.Bytes())
		want := append(recs, later...)
		if biflow {
			want = want[:0]
			for i, r := range append(recs, later...) {
				if i%2 == 0 || r.Packets != 0 {
					want = append(want, r)
				}
			}
		}
		if len(got.Records) != len(want) {
			t.Fatalf("biflow %v: %d records, want %d", biflow, len(got.Records), len(want))
		}
		for i := range want {
			g, w := got.Records[i], want[i]
			if g.CgroupID != w.CgroupID || g.Cgroup != w.Cgroup {
				t.Errorf("biflow %v: record %d: cgroup %d %q, want %d %q", biflow, i, g.CgroupID, g.Cgroup, w.CgroupID, w.Cgroup)
			}
		}
	}
}

// TestCgroupTshark: Wireshark decodes the records with applicationId and
// the options records with their names, without malformed packets or
// expert warnings, and the rest of the record as before.
func TestCgroupTshark(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, Cgroups: true}, &wiretest.Clock{T: t0})
	var s wiretest.Sink
	if _, err := e.Encode(cgroupRecords(), s.Emit); err != nil {
		t.Fatal(err)
	}
	out := wiretest.Tshark(t, 4739, s.Bytes())
	if testing.Verbose() {
		t.Log(out)
	}
	wiretest.Contains(t, out, "SrcAddr: 198.18.0.1", "DstAddr: fd00:1:2:3:4:5:6:7", "Octets: 1099511627783",
		"Classification Engine ID: USER-Defined (6)", "Selector ID: 0000000000001092",
		"ApplicationName: nginx.service", "ApplicationDesc: /system.slice/nginx.service",
		"ApplicationName: abababababab")
}

// TestCgroupAnnouncements: a message started for new cgroups announces
// those alone; a refresh announces every cgroup known.
func TestCgroupAnnouncements(t *testing.T) {
	e := newEncoder(t, Config{ObservationDomain: 7, Cgroups: true}, &wiretest.Clock{T: t0})
	msgs := func(recs ...flow.Record) []byte {
		var s wiretest.Sink
		if _, err := e.Encode(recs, s.Emit); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, b := range s.Bytes() {
			all = append(all, b...)
		}
		return all
	}
	a, b := recordV4(), recordV4()
	a.CgroupID, a.Cgroup = 1, "/a.service"
	b.CgroupID, b.Cgroup = 2, "/b.service"
	b.SrcPort++
	if m := msgs(a); !bytes.Contains(m, []byte("/a.service")) {
		t.Error("the first cgroup was not announced")
	}
	if m := msgs(a); bytes.Contains(m, []byte("/a.service")) {
		t.Error("a known cgroup was announced again without a refresh")
	}
	if m := msgs(a, b); !bytes.Contains(m, []byte("/b.service")) || bytes.Contains(m, []byte("/a.service")) {
		t.Error("a new cgroup's message does not announce it alone")
	}
	e.ForceTemplates()
	if m := msgs(); !bytes.Contains(m, []byte("/a.service")) || !bytes.Contains(m, []byte("/b.service")) {
		t.Error("a refresh does not announce every cgroup")
	}
}

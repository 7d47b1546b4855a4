// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// dumpTruth sums a dump's flows between the pair's addresses.
func dumpTruth(p *testenv.Pair, flows []kernelFlowJSON) testenv.Truth {
	out := testenv.Truth{}
	for _, f := range flows {
		src, dst := netip.MustParseAddr(f.Src), netip.MustParseAddr(f.Dst)
		if src != p.A4 && src != p.B4 || dst != p.A4 && dst != p.B4 {
			continue
		}
		dir := flow.Ingress
		if f.Direction == "egress" {
			dir = flow.Egress
		}
		k := testenv.FlowKey{Src: src, Dst: dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort,
			ICMPType: f.ICMPType, ICMPCode: f.ICMPCode, Dir: dir}
		c := out[k]
		c.Packets += f.Packets
		c.Octets += f.Bytes
		c.TCPFlags |= f.TCPFlags
		out[k] = c
	}
	return out
}

func sameTruth(t *testing.T, what string, got, want testenv.Truth) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d flows, want %d: %v", what, len(got), len(want), got)
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%s: %v: got %+v, want %+v", what, k, g, w)
		}
	}
}

// TestMapShowDump reads the maps of a datapath that counted known
// traffic, while it runs and after it stopped with its programs kept
// attached, and checks that reading does not disturb the exact drain.
func TestMapShowDump(t *testing.T) {
	f := newDatapath(t, bpf.HookAuto)
	truth, err := f.p.UDPBlast(false, 30000, 3, 30, 100)
	if err != nil {
		t.Fatal(err)
	}
	pin := []string{"--pin-dir", f.pin}

	// map show: the pinned datapath's maps, with the active flow map.
	show := append([]string{"map", "show", "--pinned"}, pin...)
	golden(t, "map_show", f.mask(f.mustRun(t, false, show...)))
	var maps []mapJSON
	if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j"}, show...)...)), &maps); err != nil {
		t.Fatal(err)
	}
	byName := map[string]mapJSON{}
	for _, m := range maps {
		byName[m.Name] = m
	}
	// IPv4 traffic: counted in cache4_a and flows4_a; flows_a (IPv6) is
	// active too.
	a, slot, stats := byName[bpf.MapFlows4A], byName[bpf.MapFlow4Slot], byName[bpf.MapStats]
	if !a.Active || a.Entries == nil || a.Pinned == "" || byName[bpf.MapFlows4B].Active {
		t.Errorf("flows4_a %+v, flows4_b %+v: want flows4_a active", a, byName[bpf.MapFlows4B])
	}
	if slot.InnerMapID != a.ID || slot.Type != "array_of_maps" {
		t.Errorf("flow4_slot %+v holds %d, want flows4_a %d", slot, slot.InnerMapID, a.ID)
	}
	c, cslot := byName[bpf.MapCache4A], byName[bpf.MapCache4Slot]
	if !c.Active || byName[bpf.MapCache4B].Active || cslot.InnerMapID != c.ID || c.Type != "percpu_array" {
		t.Errorf("cache4_a %+v, cache4_b %+v, cache4_slot %+v: want cache4_a active", c, byName[bpf.MapCache4B], cslot)
	}
	a6, slot6 := byName[bpf.MapFlowsA], byName[bpf.MapFlowSlot]
	if !a6.Active || byName[bpf.MapFlowsB].Active || slot6.InnerMapID != a6.ID {
		t.Errorf("flows_a %+v, flows_b %+v, flow_slot %+v: want flows_a active", a6, byName[bpf.MapFlowsB], slot6)
	}
	if stats.Counters == nil || stats.Type != "percpu_array" || byName[bpf.MapDrainedStats].Counters == nil {
		t.Errorf("stats %+v, drained_stats %+v: want counters", stats, byName[bpf.MapDrainedStats])
	}
	for _, n := range bpf.PinnedMapNames() {
		if byName[n].Pinned == "" {
			t.Errorf("map %s not shown as pinned", n)
		}
	}

	// map dump: the flows exactly as sent, twice (lookups only).
	dump := func(name string) dumpJSON {
		t.Helper()
		var d dumpJSON
		if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j", "map", "dump", name}, pin...)...)), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := 0; i < 2; i++ {
		d, dc := dump("active"), dump("cache")
		if d.Name != bpf.MapFlows4A || d.ID != a.ID || dc.Name != bpf.MapCache4A || dc.ID != c.ID {
			t.Errorf("active is %s %d, cache %s %d, want flows4_a %d and cache4_a %d", d.Name, d.ID, dc.Name, dc.ID, a.ID, c.ID)
		}
		sameTruth(t, "dump active and cache", dumpTruth(f.p, append(d.Flows, dc.Flows...)), truth)
	}
	if d := dump("active6"); d.Name != bpf.MapFlowsA || d.ID != a6.ID || len(dumpTruth(f.p, d.Flows)) != 0 {
		t.Errorf("active6: %+v, want flows_a %d without the test's IPv4 flows", d, a6.ID)
	}
	if d := dump(bpf.MapFlows4B); d.Flows == nil || len(d.Flows) != 0 {
		t.Errorf("flows4_b: %+v, want an empty flow list", d)
	}
	if d := dump(bpf.MapStats); d.Counters == nil || d.Counters.IgnoredPackets != 0 || d.Counters.FallbackPackets != 0 {
		t.Errorf("stats %+v", d)
	}
	if d := dump(bpf.MapFlow4Slot); len(d.Slots) != 1 || d.Slots[0].MapID != a.ID {
		t.Errorf("flow4_slot %+v", d)
	}

	// Plain text: only the test's flows (the map may hold stray ones).
	var lines []string
	for i, l := range strings.Split(f.mustRun(t, false, append([]string{"map", "dump", "cache4_a"}, pin...)...), "\n") {
		if i < 2 || strings.Contains(l, f.p.A4.String()) {
			lines = append(lines, l)
		}
	}
	golden(t, "map_dump_flows", f.maskTable(strings.Join(lines, "\n")))
	golden(t, "map_dump_drained_stats", f.mask(f.mustRun(t, false, append([]string{"map", "dump", "drained_stats"}, pin...)...)))
	golden(t, "map_dump_flow_slot", f.mask(f.mustRun(t, false, append([]string{"map", "dump", "flow4_slot"}, pin...)...)))

	// Errors: the ring buffer is not read, unknown names are usage errors.
	if code, _, errOut := f.run(t, false, append([]string{"map", "dump", "flow_events"}, pin...)...); code != exitError || !strings.Contains(errOut, "ring buffer") {
		t.Errorf("dump flow_events: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := f.run(t, false, append([]string{"map", "dump", "nosuch"}, pin...)...); code != exitUsage {
		t.Errorf("dump nosuch: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := f.run(t, false, "map", "dump", "flows_a", "--pin-dir", t.TempDir()); code != exitError || !strings.Contains(errOut, "no map flows_a pinned") {
		t.Errorf("dump without pins: exit %d, stderr %q", code, errOut)
	}

	// The exporter's drain still gets every packet: the dumps took none.
	recs, _, err := f.d.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	sameTruth(t, "drain after dumps", oursRecords(f.p, recs), truth)

	// Stopped with programs kept attached: the maps are still readable.
	more, err := f.p.UDPBlast(false, 31000, 2, 10, 200)
	if err != nil {
		t.Fatal(err)
	}
	f.release(t)
	d, dc := dump("active"), dump("cache")
	if d.Name != bpf.MapFlows4B || dc.Name != bpf.MapCache4B {
		t.Errorf("after a drain, active is %s, cache %s, want flows4_b and cache4_b", d.Name, dc.Name)
	}
	sameTruth(t, "dump after release", dumpTruth(f.p, append(d.Flows, dc.Flows...)), more)
	if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j", "m"}, pin...)...)), &maps); err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 {
		t.Error("map show after release: no maps")
	}
}

// oursRecords sums drained records between the pair's addresses.
func oursRecords(p *testenv.Pair, recs []flow.Record) testenv.Truth {
	out := testenv.Truth{}
	for _, r := range recs {
		if r.Src != p.A4 && r.Src != p.B4 || r.Dst != p.A4 && r.Dst != p.B4 {
			continue
		}
		k := testenv.KeyOf(&r)
		c := out[k]
		c.Packets += r.Packets
		c.Octets += r.Octets
		c.TCPFlags |= r.TCPFlags
		out[k] = c
	}
	return out
}

// TestMapShowFiltered: what a capture filter left out shows in map show
// and map dump, per interface and direction, exactly.
func TestMapShowFiltered(t *testing.T) {
	f := newDatapathConfig(t, bpf.HookAuto, bpf.Config{Filter: "not udp dst port 9"})
	truth, err := f.p.UDPBlast(false, 30000, 2, 20, 100) // to port 9: all left out
	if err != nil {
		t.Fatal(err)
	}
	var want filteredJSON
	for _, c := range truth {
		want.Packets += c.Packets
		want.Bytes += c.Octets
	}
	want.Ifindex, want.Direction = uint32(f.p.AIndex), "egress"
	pin := []string{"--pin-dir", f.pin}
	var maps []mapJSON
	if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j", "map", "show", "--pinned"}, pin...)...)), &maps); err != nil {
		t.Fatal(err)
	}
	var got []filteredJSON
	for _, m := range maps {
		if m.Name == bpf.MapFiltered {
			got = m.Filtered
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("map show: filtered %+v, want %+v", got, want)
	}
	var d dumpJSON
	if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j", "map", "dump", bpf.MapFiltered}, pin...)...)), &d); err != nil {
		t.Fatal(err)
	}
	if d.Kind != "filtered" || len(d.Filtered) != 1 || d.Filtered[0] != want {
		t.Errorf("map dump: %+v, want filtered %+v", d, want)
	}
	plain := f.mustRun(t, false, append([]string{"map", "show", "--pinned"}, pin...)...)
	if line := fmt.Sprintf("filtered: ifindex %d egress  %d packets %d octets", want.Ifindex, want.Packets, want.Bytes); !strings.Contains(plain, line) {
		t.Errorf("map show lacks %q:\n%s", line, plain)
	}
}

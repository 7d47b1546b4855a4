// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestPinsRootOnly: the pin directory and every pin in it are readable
// by their owner (root) only.
func TestPinsRootOnly(t *testing.T) {
	testenv.RequirePrivileged(t)
	pin := filepath.Join(mountBPFFS(t), "kflow")
	d, err := Load(Config{PinDir: pin, MapEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		d.Close()
		d.Unpin()
	}()
	st, err := os.Stat(pin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("pin directory %s has mode %v, want no access for group and others", pin, st.Mode().Perm())
	}
	entries, err := os.ReadDir(pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < len(pinnedMaps) {
		t.Fatalf("%d pins in %s, want at least %d", len(entries), pin, len(pinnedMaps))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("pin %s has mode %v, want owner only", e.Name(), info.Mode().Perm())
		}
	}
}

// TestAdoptPreviousLayout: an exporter upgrading from a datapath without
// the IPv4 flow maps and cache (pins of flows_a, flows_b and flow_slot,
// where the earlier programs counted IPv4 flows with IPv4-mapped keys)
// adopts the pins as they are, creates and pins the missing maps, and
// drains them all: the IPv4 flows counted before the upgrade come out of
// the general map exactly, the ones counted after it out of the cache.
func TestAdoptPreviousLayout(t *testing.T) {
	testenv.RequirePrivileged(t)
	newMaps := []string{kflowMapFlows4A, kflowMapFlows4B, kflowMapFlow4Slot, kflowMapCache4A, kflowMapCache4B, kflowMapCache4Slot,
		kflowMapCache6A, kflowMapCache6B, kflowMapCache6Slot}
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			pin := filepath.Join(mountBPFFS(t), "kflow")
			cfg := Config{PinDir: pin, MapEntries: 16, PerCPUValues: !mode.shared}
			d, err := Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			clocks, err := sampleClocks(d.objs.KflowClock, d.objs.Clock)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := d.Release(); err != nil {
				t.Fatal(err)
			}
			// The previous layout's pins: the same maps, no IPv4 maps and
			// no flow cache.
			for _, n := range newMaps {
				if err := os.Remove(filepath.Join(pin, n)); err != nil {
					t.Fatal(err)
				}
			}
			slot, err := ebpf.LoadPinnedMap(filepath.Join(pin, kflowMapFlowSlot), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer slot.Close()
			var id ebpf.MapID
			if err := slot.Lookup(uint32(0), &id); err != nil {
				t.Fatal(err)
			}
			old, err := ebpf.NewMapFromID(id)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			if old.KeySize() != 52 || old.ValueSize() != 48 {
				t.Fatalf("active general map: key %d value %d bytes, the previous layout has 52 and 48", old.KeySize(), old.ValueSize())
			}
			// What the previous programs counted: an IPv4 flow, IPv4-mapped.
			var k kflowFlowKey
			k.SrcAddr[10], k.SrcAddr[11], k.DstAddr[10], k.DstAddr[11] = 0xff, 0xff, 0xff, 0xff
			src, dst := v4A.As4(), v4B.As4()
			copy(k.SrcAddr[12:], src[:])
			copy(k.DstAddr[12:], dst[:])
			k.Ifindex, k.IpVersion, k.Protocol, k.SrcPort, k.DstPort = 1, 4, 17, 1000, 53
			v := kflowFlowValue{Packets: 5, Octets: 500, FirstSeen: clocks.Jiffies, LastSeen: clocks.Jiffies, MinTtl: 64, MaxTtl: 64}
			if cfg.PerCPUValues {
				ncpu, err := ebpf.PossibleCPU()
				if err != nil {
					t.Fatal(err)
				}
				vals := make([]kflowFlowValue, ncpu)
				vals[0] = v
				err = old.Put(&k, vals)
			} else {
				err = old.Put(&k, &v)
			}
			if err != nil {
				t.Fatal(err)
			}

			d2, err := Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				d2.Close()
				d2.Unpin()
			}()
			if !d2.Adopted() {
				t.Fatal("the previous layout's pins were not adopted")
			}
			for _, n := range newMaps {
				if !pinExists(filepath.Join(pin, n)) {
					t.Errorf("%s not pinned after the upgrade", n)
				}
			}
			f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1000, 53), payload(10))
			runFrames(t, d2.objs.KflowTcxIngress, nil, f, f)
			recs, st := drainTest(t, d2)
			checkRecords(t, recs, []flow.Record{
				v4rec(17, 1000, 53, 5, 500, 64),         // counted before the upgrade
				v4rec(17, 1000, 53, 2, 2*(20+8+10), 64), // after it
			}, start, time.Now())
			checkStats(t, st, Stats{})
			recs, _ = drainTest(t, d2)
			checkRecords(t, recs, nil, start, time.Now())
		})
	}
}

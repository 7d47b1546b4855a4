// SPDX-License-Identifier: Apache-2.0

package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cilium/ebpf"
	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/cmd/internal/querycli"
	"github.com/kflow-dev/kflow/exporter/flow"
)

func mapCmd() *command {
	return &command{
		name:    "map",
		summary: "kflow's BPF maps: flow maps, slot, ring buffer, counters",
		def:     "show",
		sub:     []*command{mapShowCmd(), mapDumpCmd()},
	}
}

// mapJSON is one map in "kflow map show -j".
type mapJSON struct {
	ID         uint32 `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	KeySize    uint32 `json:"key_size"`
	ValueSize  uint32 `json:"value_size"`
	MaxEntries uint32 `json:"max_entries"`
	Flags      uint32 `json:"flags"`
	Frozen     bool   `json:"frozen"`
	Pinned     string `json:"pinned,omitempty"`
	// Entries is set for hash maps (the flow maps).
	Entries *int `json:"entries,omitempty"`
	// Active marks the flow map the programs count into now.
	Active bool `json:"active"`
	// InnerMapID is the map a flow_slot holds.
	InnerMapID uint32                `json:"inner_map_id,omitempty"`
	Counters   *datapathCountersJSON `json:"counters,omitempty"`
	// Filtered is set for the capture filter's map.
	Filtered []filteredJSON `json:"filtered,omitzero"`
}

// filteredJSON is what the capture filter left out on one interface in
// one direction (interface 0: interfaces past the map's capacity).
type filteredJSON struct {
	Ifindex   uint32 `json:"ifindex"`
	Direction string `json:"direction"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}

func toFilteredJSON(fs []bpf.FilteredCount) []filteredJSON {
	var out []filteredJSON
	for _, f := range fs {
		out = append(out, filteredJSON{Ifindex: f.Ifindex, Direction: f.Direction.String(), Packets: f.Packets, Bytes: f.Octets})
	}
	return out
}

func renderFiltered(w io.Writer, fs []filteredJSON) {
	for _, f := range fs {
		fmt.Fprintf(w, "	filtered: ifindex %d %s  %d packets %d octets\n", f.Ifindex, f.Direction, f.Packets, f.Bytes)
	}
}

func mapShowCmd() *command {
	a := &inspectArgs{}
	return &command{
		name:    "show",
		aliases: []string{"list"},
		summary: "list kflow's maps (pinned under --pin-dir and used by kflow's programs), with flow counts and counters",
		flags:   a.register,
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			progs, _, err := a.selectPrograms()
			if err != nil {
				return err
			}
			maps, err := bpf.LoadedMaps(a.pinDir, progs)
			if err != nil {
				return err
			}
			out := make([]mapJSON, 0, len(maps))
			for _, m := range maps {
				j := mapJSON{ID: uint32(m.ID), Name: m.Name, Type: mapTypeName(m.Type), KeySize: m.KeySize, ValueSize: m.ValueSize,
					MaxEntries: m.MaxEntries, Flags: m.Flags, Frozen: m.Frozen, Pinned: m.Pinned, Active: m.Active,
					InnerMapID: uint32(m.Inner), Counters: toDatapathCounters(m.Counters), Filtered: toFilteredJSON(m.Filtered)}
				if m.Entries >= 0 {
					n := m.Entries
					j.Entries = &n
				}
				out = append(out, j)
			}
			if e.json {
				return e.printJSON(out)
			}
			renderMaps(e.stdout, out)
			return nil
		},
	}
}

func renderMaps(w io.Writer, maps []mapJSON) {
	for _, m := range maps {
		fmt.Fprintf(w, "%d: %s  name %s  flags 0x%x", m.ID, m.Type, m.Name, m.Flags)
		if m.Frozen {
			fmt.Fprintf(w, "  frozen")
		}
		fmt.Fprintf(w, "\n\tkey %dB  value %dB  max_entries %d", m.KeySize, m.ValueSize, m.MaxEntries)
		if m.Entries != nil {
			fmt.Fprintf(w, "  entries %d", *m.Entries)
		}
		if m.Active {
			fmt.Fprintf(w, "  active")
		}
		if m.InnerMapID != 0 {
			fmt.Fprintf(w, "  holds map %d", m.InnerMapID)
		}
		fmt.Fprintln(w)
		if c := m.Counters; c != nil {
			fmt.Fprintf(w, "\tpackets/octets: non_ip %d/%d  unparsed %d/%d  fallback %d/%d  ignored %d/%d\n",
				c.NonIPPackets, c.NonIPOctets, c.UnparsedPackets, c.UnparsedOctets,
				c.FallbackPackets, c.FallbackOctets, c.IgnoredPackets, c.IgnoredOctets)
		}
		renderFiltered(w, m.Filtered)
		if m.Pinned != "" {
			fmt.Fprintf(w, "\tpinned %s\n", m.Pinned)
		}
	}
}

// kernelFlowJSON is one kernel flow map entry in "kflow map dump -j":
// the flow in kflow's flow JSON (without times) and what only the kernel
// entry has: its interface and its times in the datapath clock (jiffies,
// or CLOCK_BOOTTIME ns with --timestamps precise).
type kernelFlowJSON struct {
	flow.JSON
	Ifindex        uint32 `json:"ifindex"`
	FirstSeenClock uint64 `json:"first_seen_clock"`
	LastSeenClock  uint64 `json:"last_seen_clock"`
}

// dumpJSON is the output of "kflow map dump -j": one of flows,
// counters or slots is set, by the kind of map.
type dumpJSON struct {
	ID     uint32 `json:"id"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Pinned string `json:"pinned,omitempty"`
	// Kind says which of the fields below is set: flows, counters, slots
	// or filtered.
	Kind     string                `json:"kind"`
	Flows    []kernelFlowJSON      `json:"flows,omitzero"`
	Counters *datapathCountersJSON `json:"counters,omitempty"`
	Slots    []slotJSON            `json:"slots,omitzero"`
	Filtered []filteredJSON        `json:"filtered,omitzero"`
}

type slotJSON struct {
	Key   uint32 `json:"key"`
	MapID uint32 `json:"map_id"`
}

func mapDumpCmd() *command {
	a := &inspectArgs{}
	return &command{
		name:    "dump",
		summary: "print a map's entries: flows of a flow map (values summed over CPUs), counters of a stats map, the flow slot",
		usage: "NAME | id ID\n\nNAME is a map pinned under --pin-dir (" + strings.Join(bpf.PinnedMapNames(), ", ") +
			"), \"active\", the IPv4 flow map the programs count into now, \"cache\", the IPv4 flow cache\n" +
			"in front of it (a flow's counters since they last moved into the map, per CPU), \"active6\" and \"cache6\", the same for IPv6.\n" +
			"Dumping only reads: the exporter's drain is not disturbed.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&a.pinDir, "pin-dir", bpf.DefaultPinDir, "bpffs `DIR` where the exporter pins its maps")
		},
		run: func(e *env, args []string) error {
			m, pinned, err := openDumpMap(a.pinDir, args)
			if err != nil {
				return err
			}
			defer m.Close()
			info, err := m.Info()
			if err != nil {
				return fmt.Errorf("map info: %w", err)
			}
			id, _ := info.ID()
			d := dumpJSON{ID: uint32(id), Name: info.Name, Type: mapTypeName(info.Type), Pinned: pinned}
			switch {
			case bpf.IsFlowMap(m):
				d.Kind, d.Flows = "flows", []kernelFlowJSON{}
				err = bpf.DumpFlows(m, func(f *bpf.FlowEntry) error {
					d.Flows = append(d.Flows, toFlowJSON(f))
					return nil
				})
				slices.SortFunc(d.Flows, compareFlows)
			case bpf.IsFilteredMap(m):
				var fs []bpf.FilteredCount
				fs, err = bpf.ReadFiltered(m)
				d.Kind, d.Filtered = "filtered", toFilteredJSON(fs)
				if d.Filtered == nil {
					d.Filtered = []filteredJSON{}
				}
			case info.Type == ebpf.ArrayOfMaps:
				var inner ebpf.MapID
				inner, err = bpf.ReadSlot(m)
				d.Kind, d.Slots = "slots", []slotJSON{{Key: 0, MapID: uint32(inner)}}
			case info.Type == ebpf.RingBuf:
				return fmt.Errorf("map %s is a ring buffer: reading it would consume the exporter's events (kflow map show sizes it)", info.Name)
			case info.Type == ebpf.PerCPUArray || info.Type == ebpf.Array:
				var st bpf.Stats
				st, err = bpf.ReadStats(m)
				d.Kind, d.Counters = "counters", toDatapathCounters(&st)
			default:
				return fmt.Errorf("map %s (%s): not one of kflow's maps", info.Name, d.Type)
			}
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(d)
			}
			renderDump(e.stdout, &d)
			return nil
		},
	}
}

// openDumpMap opens the map the arguments name, read-only when pinned.
func openDumpMap(pinDir string, args []string) (*ebpf.Map, string, error) {
	switch {
	case len(args) == 2 && args[0] == "id":
		n, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("%w: map id %q: %v", errUsage, args[1], err)
		}
		m, err := ebpf.NewMapFromID(ebpf.MapID(n))
		if err != nil {
			return nil, "", fmt.Errorf("open map %d: %w", n, err)
		}
		return m, "", nil
	case len(args) != 1:
		return nil, "", fmt.Errorf("%w: want one map NAME or id ID (kflow map dump help)", errUsage)
	}
	name := args[0]
	switch name {
	case "active":
		return bpf.OpenActiveFlowMap(pinDir, bpf.MapFlow4Slot)
	case "active6":
		return bpf.OpenActiveFlowMap(pinDir, bpf.MapFlowSlot)
	case "cache":
		return bpf.OpenActiveFlowMap(pinDir, bpf.MapCache4Slot)
	case "cache6":
		return bpf.OpenActiveFlowMap(pinDir, bpf.MapCache6Slot)
	}
	if !slices.Contains(bpf.PinnedMapNames(), name) {
		return nil, "", fmt.Errorf("%w: unknown map %q: want one of %s, active, cache, active6, cache6, or id ID", errUsage, name,
			strings.Join(bpf.PinnedMapNames(), ", "))
	}
	path := filepath.Join(pinDir, name)
	m, err := bpf.OpenPinnedMap(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("no map %s pinned under %s (is an exporter running with --pin-dir %s? kflow map show lists maps by id)", name, pinDir, pinDir)
	}
	if err != nil {
		return nil, "", err
	}
	return m, path, nil
}

func toFlowJSON(f *bpf.FlowEntry) kernelFlowJSON {
	r := f.Record()
	return kernelFlowJSON{JSON: flow.NewJSON(&r), Ifindex: f.Ifindex, FirstSeenClock: f.FirstSeen, LastSeenClock: f.LastSeen}
}

// compareFlows orders a dump for stable output: interface, direction,
// protocol, addresses, ports.
func compareFlows(a, b kernelFlowJSON) int {
	return cmp.Or(cmp.Compare(a.Ifindex, b.Ifindex), cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Proto, b.Proto),
		cmp.Compare(a.Src, b.Src), cmp.Compare(a.Dst, b.Dst), cmp.Compare(a.SrcPort, b.SrcPort), cmp.Compare(a.DstPort, b.DstPort),
		cmp.Compare(a.ICMPType, b.ICMPType), cmp.Compare(a.ICMPCode, b.ICMPCode), cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.InnerVLAN, b.InnerVLAN))
}

func renderDump(w io.Writer, d *dumpJSON) {
	fmt.Fprintf(w, "%d: %s  name %s", d.ID, d.Type, d.Name)
	if d.Pinned != "" {
		fmt.Fprintf(w, "  pinned %s", d.Pinned)
	}
	fmt.Fprintln(w)
	for _, s := range d.Slots {
		fmt.Fprintf(w, "slot %d: map %d\n", s.Key, s.MapID)
	}
	if c := d.Counters; c != nil {
		for _, r := range []struct {
			name           string
			packets, bytes uint64
		}{
			{"non_ip", c.NonIPPackets, c.NonIPOctets},
			{"unparsed", c.UnparsedPackets, c.UnparsedOctets},
			{"fallback", c.FallbackPackets, c.FallbackOctets},
			{"ignored", c.IgnoredPackets, c.IgnoredOctets},
		} {
			fmt.Fprintf(w, "%-9s %12d packets %14d octets\n", r.name, r.packets, r.bytes)
		}
	}
	renderFiltered(w, d.Filtered)
	if d.Flows == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "IFINDEX\tDIR\tPROTO\tSRC\t\tDST\tFLAGS\tPACKETS\tOCTETS\tTOS\tTTL\tVLAN\n")
	for _, f := range d.Flows {
		r, err := f.JSON.Record()
		if err != nil {
			continue // made from a record above: cannot fail
		}
		sport, dport := querycli.Ports(&r)
		flags := "-"
		if f.Proto == flow.ProtoTCP {
			flags = flow.TCPFlagsString(f.TCPFlags)
		}
		dir := "in"
		if f.Direction == flow.Egress.String() {
			dir = "out"
		}
		vlan := "-"
		if f.VLAN != 0 {
			vlan = fmt.Sprint(f.VLAN)
			if f.InnerVLAN != 0 {
				vlan += fmt.Sprintf(".%d", f.InnerVLAN)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t->\t%s\t%s\t%d\t%d\t%d\t%d-%d\t%s\n", f.Ifindex, dir, flow.ProtoName(f.Proto),
			hostPort(r.Src, sport), hostPort(r.Dst, dport), flags, f.Packets, f.Bytes, f.TOS, f.MinTTL, f.MaxTTL, vlan)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d flows\n", len(d.Flows))
}

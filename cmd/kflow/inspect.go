// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/bpf"
)

// What the read-only nouns (prog, map, link, net) share: where the pins
// are, and which of kflow's objects belong to the datapath pinned there.
// These commands never change state: no mount, no attach, no delete.

type inspectArgs struct {
	pinDir string
	pinned bool
}

func (a *inspectArgs) register(fs *pflag.FlagSet) {
	fs.StringVar(&a.pinDir, "pin-dir", bpf.DefaultPinDir, "bpffs `DIR` where the exporter pins its maps and links")
	fs.BoolVar(&a.pinned, "pinned", false, "show only the datapath whose maps are pinned under --pin-dir")
}

// pinnedMapIDs returns the ids of the maps pinned under dir, by name.
func pinnedMapIDs(dir string) (map[ebpf.MapID]string, error) {
	ids := map[ebpf.MapID]string{}
	if dir == "" {
		return ids, nil
	}
	for _, name := range bpf.PinnedMapNames() {
		path := filepath.Join(dir, name)
		m, err := bpf.OpenPinnedMap(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info, err := m.Info()
		m.Close()
		if err != nil {
			return nil, err
		}
		if id, ok := info.ID(); ok {
			ids[id] = path
		}
	}
	return ids, nil
}

// usesAny reports whether a program uses one of the maps.
func usesAny(p bpf.LoadedProgram, maps map[ebpf.MapID]string) bool {
	for _, id := range p.MapIDs {
		if _, ok := maps[id]; ok {
			return true
		}
	}
	return false
}

// selectPrograms lists kflow's programs, only those of the pinned
// datapath with --pinned, and the pinned map ids.
func (a *inspectArgs) selectPrograms() ([]bpf.LoadedProgram, map[ebpf.MapID]string, error) {
	pinned, err := pinnedMapIDs(a.pinDir)
	if err != nil {
		return nil, nil, err
	}
	progs, err := bpf.LoadedPrograms()
	if err != nil {
		return nil, nil, err
	}
	if a.pinned {
		progs = slices.DeleteFunc(progs, func(p bpf.LoadedProgram) bool { return !usesAny(p, pinned) })
	}
	return progs, pinned, nil
}

// progTypeName names a program type as bpftool does.
func progTypeName(t ebpf.ProgramType) string {
	switch t {
	case ebpf.SchedCLS:
		return "sched_cls"
	case ebpf.XDP:
		return "xdp"
	case ebpf.SocketFilter:
		return "socket_filter"
	}
	return strings.ToLower(t.String())
}

// mapTypeName names a map type as bpftool does.
func mapTypeName(t ebpf.MapType) string {
	switch t {
	case ebpf.Hash:
		return "hash"
	case ebpf.PerCPUHash:
		return "percpu_hash"
	case ebpf.Array:
		return "array"
	case ebpf.PerCPUArray:
		return "percpu_array"
	case ebpf.ArrayOfMaps:
		return "array_of_maps"
	case ebpf.RingBuf:
		return "ringbuf"
	}
	return strings.ToLower(t.String())
}

// datapathCountersJSON are a stats map's counters, summed over CPUs.
type datapathCountersJSON struct {
	NonIPPackets    uint64 `json:"non_ip_packets"`
	NonIPOctets     uint64 `json:"non_ip_bytes"`
	UnparsedPackets uint64 `json:"unparsed_packets"`
	UnparsedOctets  uint64 `json:"unparsed_bytes"`
	FallbackPackets uint64 `json:"fallback_packets"`
	FallbackOctets  uint64 `json:"fallback_bytes"`
	IgnoredPackets  uint64 `json:"ignored_packets"`
	IgnoredOctets   uint64 `json:"ignored_bytes"`
}

func toDatapathCounters(s *bpf.Stats) *datapathCountersJSON {
	if s == nil {
		return nil
	}
	return &datapathCountersJSON{s.NonIPPackets, s.NonIPOctets, s.UnparsedPackets, s.UnparsedOctets,
		s.FallbackPackets, s.FallbackOctets, s.IgnoredPackets, s.IgnoredOctets}
}

// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/kflow-dev/kflow/bpf/pcapfilter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// setFilter compiles a capture filter into the object's filter program
// and turns the interpreter on; an empty filter leaves it off (the
// verifier then removes it from the programs).
func setFilter(spec *ebpf.CollectionSpec, expr string) error {
	prog, err := pcapfilter.Compile(expr)
	if err != nil {
		return fmt.Errorf("capture filter: %w", err)
	}
	if len(prog) == 0 {
		return nil
	}
	if err := spec.Variables[kflowVarFilterInsns].Set(filterInsns(prog)); err != nil {
		return fmt.Errorf("set capture filter program: %w", err)
	}
	if err := spec.Variables[kflowVarCfgFilterLen].Set(uint32(len(prog))); err != nil {
		return fmt.Errorf("set capture filter length: %w", err)
	}
	if err := spec.Variables[kflowVarCfgFilter].Set(uint8(1)); err != nil {
		return fmt.Errorf("turn the capture filter on: %w", err)
	}
	return nil
}

// createFilteredOverflow creates the filtered map's {0, 0} entry, which
// the datapath counts in when the map has no room for an interface.
func createFilteredOverflow(m *ebpf.Map) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("possible cpus: %w", err)
	}
	err = m.Update(kflowFilterKey{}, make([]kflowFilterCounts, n), ebpf.UpdateNoExist)
	if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("create the filtered counters' overflow entry: %w", err)
	}
	return nil
}

// filterInsns lays a program out as the datapath reads it.
func filterInsns(prog pcapfilter.Program) [pcapfilter.MaxInsns]kflowFilterInsn {
	var insns [pcapfilter.MaxInsns]kflowFilterInsn
	for i, in := range prog {
		insns[i] = kflowFilterInsn{
			Addr: [2]uint64{binary.NativeEndian.Uint64(in.Addr[:8]), binary.NativeEndian.Uint64(in.Addr[8:])},
			Mask: [2]uint64{binary.NativeEndian.Uint64(in.Mask[:8]), binary.NativeEndian.Uint64(in.Mask[8:])},
			Lo:   in.Lo, Hi: in.Hi, Op: uint8(in.Op), Version: in.Version, Jt: in.JT, Jf: in.JF, Proto: in.Proto,
		}
	}
	return insns
}

// FilteredCount is what the capture filter left out on one interface in
// one direction, since the filtered map was created (totals: they only
// grow, and survive a restart that adopts the pinned map).
type FilteredCount struct {
	Ifindex         uint32 // 0: interfaces past the map's capacity
	Direction       flow.Direction
	Packets, Octets uint64
}

// Filtered returns the capture filter's counters, by interface and
// direction.
func (d *Datapath) Filtered() ([]FilteredCount, error) { return ReadFiltered(d.objs.Filtered) }

// IsFilteredMap reports whether m has the layout of the filtered map.
func IsFilteredMap(m *ebpf.Map) bool {
	return m.Type() == ebpf.PerCPUHash && m.KeySize() == 8 && m.ValueSize() == 16
}

// ReadFiltered reads a filtered map (lookups only), values summed over
// CPUs, by interface and direction; entries that counted nothing are
// left out.
func ReadFiltered(m *ebpf.Map) ([]FilteredCount, error) {
	if !IsFilteredMap(m) {
		return nil, fmt.Errorf("map %s: not a filtered map", m.String())
	}
	var out []FilteredCount
	var key kflowFilterKey
	var vals []kflowFilterCounts
	iter := m.Iterate()
	for iter.Next(&key, &vals) {
		c := FilteredCount{Ifindex: key.Ifindex, Direction: flow.Direction(key.Direction)}
		for _, v := range vals {
			c.Packets += v.Packets
			c.Octets += v.Octets
		}
		if c.Packets != 0 || c.Octets != 0 {
			out = append(out, c)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("read filtered counters: %w", err)
	}
	slices.SortFunc(out, func(a, b FilteredCount) int {
		return cmp.Or(cmp.Compare(a.Ifindex, b.Ifindex), cmp.Compare(a.Direction, b.Direction))
	})
	return out, nil
}

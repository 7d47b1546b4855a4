// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// AttachedProgram is one BPF program attached to an interface's TCX, TC
// or XDP hook, whoever attached it.
type AttachedProgram struct {
	Ifindex   int
	Hook      Hook
	Direction flow.Direction
	ProgramID ebpf.ProgramID
	Name      string // the program's name, as the kernel reports it
}

// IsKflow reports whether the program is one of kflow's.
func (p AttachedProgram) IsKflow() bool { return strings.HasPrefix(p.Name, "kflow_") }

// Attached lists the programs on an interface of the calling thread's
// network namespace, in hook order.
func Attached(ifindex int) ([]AttachedProgram, error) {
	var out []AttachedProgram
	if HaveTCX() {
		for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
			at := ebpf.AttachTCXIngress
			if dir == flow.Egress {
				at = ebpf.AttachTCXEgress
			}
			res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: at})
			if err != nil {
				return nil, fmt.Errorf("query tcx %s programs: %w", dir, err)
			}
			for _, p := range res.Programs {
				out = append(out, AttachedProgram{Ifindex: ifindex, Hook: HookTCX, Direction: dir, ProgramID: p.ID, Name: progName(p.ID)})
			}
		}
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("interface %d: %w: %w", ifindex, ErrUnknownInterface, err)
	}
	for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
		parent := uint32(netlink.HANDLE_MIN_INGRESS)
		if dir == flow.Egress {
			parent = netlink.HANDLE_MIN_EGRESS
		}
		filters, err := h.FilterList(l, parent)
		if err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				continue // no clsact qdisc
			}
			return nil, fmt.Errorf("list tc %s filters: %w", dir, err)
		}
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok {
				out = append(out, AttachedProgram{Ifindex: ifindex, Hook: HookTC, Direction: dir,
					ProgramID: ebpf.ProgramID(bf.Id), Name: progName(ebpf.ProgramID(bf.Id))})
			}
		}
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		out = append(out, AttachedProgram{Ifindex: ifindex, Hook: HookXDP, Direction: flow.Ingress,
			ProgramID: ebpf.ProgramID(x.ProgId), Name: progName(ebpf.ProgramID(x.ProgId))})
	}
	return out, nil
}

func progName(id ebpf.ProgramID) string {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/bpf"
)

func netCmd() *command {
	return &command{
		name:    "net",
		summary: "BPF programs on the network interfaces of this network namespace",
		def:     "show",
		sub:     []*command{netShowCmd()},
	}
}

// netJSON is one attached program in "kflow net show -j".
type netJSON struct {
	Ifname      string `json:"ifname"`
	Ifindex     int    `json:"ifindex"`
	Hook        string `json:"hook"`
	Direction   string `json:"direction"`
	ProgramID   uint32 `json:"prog_id"`
	ProgramName string `json:"prog_name"`
	Kflow       bool   `json:"kflow"`
}

func netShowCmd() *command {
	return &command{
		name:    "show",
		aliases: []string{"list"},
		summary: "list the TCX, TC and XDP programs on every interface of this network namespace, whoever attached them; kflow's are marked",
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			out, err := netAttachments()
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(out)
			}
			renderNet(e.stdout, out)
			return nil
		},
	}
}

// netAttachments lists the programs on the interfaces of the calling
// thread's network namespace.
func netAttachments() ([]netJSON, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	slices.SortFunc(links, func(a, b netlink.Link) int { return cmp.Compare(a.Attrs().Index, b.Attrs().Index) })
	out := []netJSON{}
	for _, l := range links {
		atts, err := bpf.Attached(l.Attrs().Index)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.Attrs().Name, err)
		}
		for _, a := range atts {
			out = append(out, netJSON{Ifname: l.Attrs().Name, Ifindex: a.Ifindex, Hook: string(a.Hook), Direction: a.Direction.String(),
				ProgramID: uint32(a.ProgramID), ProgramName: a.Name, Kflow: a.IsKflow()})
		}
	}
	return out, nil
}

func renderNet(w io.Writer, rows []netJSON) {
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "IFACE\tIFINDEX\tHOOK\tDIRECTION\tPROG_ID\tPROG\tOWNER\n")
	for _, r := range rows {
		mark := "-"
		if r.Kflow {
			mark = "kflow"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", r.Ifname, r.Ifindex, r.Hook, r.Direction, r.ProgramID, dash(r.ProgramName), mark)
	}
	tw.Flush()
}

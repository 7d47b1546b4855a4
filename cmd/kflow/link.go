// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/kflow-dev/kflow/bpf"
)

func linkCmd() *command {
	return &command{
		name:    "link",
		summary: "BPF links (TCX, XDP) that hold kflow's programs on interfaces",
		def:     "show",
		sub:     []*command{linkShowCmd()},
	}
}

// linkJSON is one link in "kflow link show -j".
type linkJSON struct {
	ID          uint32 `json:"id"`
	Type        string `json:"type"`
	Ifindex     int    `json:"ifindex"`
	Ifname      string `json:"ifname,omitempty"`
	Hook        string `json:"hook"`
	Direction   string `json:"direction"`
	ProgramID   uint32 `json:"prog_id"`
	ProgramName string `json:"prog_name"`
	Pinned      string `json:"pinned,omitempty"`
}

func linkShowCmd() *command {
	a := &inspectArgs{}
	return &command{
		name:    "show",
		aliases: []string{"list"},
		summary: "list the links to kflow's programs and the links pinned under --pin-dir (legacy TC filters are not links: see kflow net show)",
		flags:   a.register,
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			links, err := bpf.LoadedLinks(a.pinDir)
			if err != nil {
				return err
			}
			if a.pinned {
				progs, _, err := a.selectPrograms()
				if err != nil {
					return err
				}
				links = slices.DeleteFunc(links, func(l bpf.LoadedLink) bool {
					return l.Pinned == "" && !slices.ContainsFunc(progs, func(p bpf.LoadedProgram) bool { return p.ID == l.ProgramID })
				})
			}
			out := make([]linkJSON, 0, len(links))
			for _, l := range links {
				out = append(out, linkJSON{ID: uint32(l.ID), Type: l.Type, Ifindex: l.Ifindex, Ifname: l.Ifname, Hook: string(l.Hook),
					Direction: l.Direction.String(), ProgramID: uint32(l.ProgramID), ProgramName: l.ProgramName, Pinned: l.Pinned})
			}
			if e.json {
				return e.printJSON(out)
			}
			renderLinks(e.stdout, out)
			return nil
		},
	}
}

func renderLinks(w io.Writer, links []linkJSON) {
	if len(links) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tTYPE\tIFACE\tIFINDEX\tDIRECTION\tPROG_ID\tPROG\tPINNED\n")
	for _, l := range links {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", l.ID, l.Type, dash(l.Ifname), l.Ifindex, l.Direction,
			l.ProgramID, dash(l.ProgramName), dash(l.Pinned))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

func progCmd() *command {
	return &command{
		name:    "prog",
		summary: "kflow's BPF programs loaded in the kernel",
		def:     "show",
		sub:     []*command{progShowCmd()},
	}
}

// progJSON is one program in "kflow prog show -j".
type progJSON struct {
	ID       uint32    `json:"id"`
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Tag      string    `json:"tag"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	UID      uint32    `json:"uid"`
	MapIDs   []uint32  `json:"map_ids"`
	// PinDir is set when the program uses maps pinned under --pin-dir.
	PinDir string `json:"pin_dir,omitempty"`
}

func progShowCmd() *command {
	a := &inspectArgs{}
	return &command{
		name:    "show",
		aliases: []string{"list"},
		summary: "list kflow's programs (name kflow_*) with their maps",
		flags:   a.register,
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			progs, pinned, err := a.selectPrograms()
			if err != nil {
				return err
			}
			out := make([]progJSON, 0, len(progs))
			for _, p := range progs {
				j := progJSON{ID: uint32(p.ID), Name: p.Name, Type: progTypeName(p.Type), Tag: p.Tag, LoadedAt: p.LoadedAt, UID: p.UID, MapIDs: []uint32{}}
				for _, id := range p.MapIDs {
					j.MapIDs = append(j.MapIDs, uint32(id))
				}
				if usesAny(p, pinned) {
					j.PinDir = a.pinDir
				}
				out = append(out, j)
			}
			if e.json {
				return e.printJSON(out)
			}
			renderProgs(e.stdout, out)
			return nil
		},
	}
}

// renderProgs prints programs as bpftool does, one block each.
func renderProgs(w io.Writer, progs []progJSON) {
	for _, p := range progs {
		fmt.Fprintf(w, "%d: %s  name %s  tag %s\n", p.ID, p.Type, p.Name, p.Tag)
		fmt.Fprintf(w, "\tloaded_at %s  uid %d\n", formatLoaded(p.LoadedAt), p.UID)
		ids := make([]string, len(p.MapIDs))
		for i, id := range p.MapIDs {
			ids[i] = fmt.Sprint(id)
		}
		fmt.Fprintf(w, "\tmap_ids %s", strings.Join(ids, ","))
		if p.PinDir != "" {
			fmt.Fprintf(w, "  pin_dir %s", p.PinDir)
		}
		fmt.Fprintln(w)
	}
}

func formatLoaded(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

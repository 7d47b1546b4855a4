// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/pflag"

	"github.com/kflow-dev/kflow/bpf"
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
	// The kernel's run statistics (as bpftool names them), when it
	// counted any run: over StatsWindow with --stats, else since they
	// were enabled.
	RunTimeNs   uint64  `json:"run_time_ns,omitempty"`
	RunCount    uint64  `json:"run_cnt,omitempty"`
	NsPerRun    float64 `json:"ns_per_run,omitempty"`
	StatsWindow string  `json:"stats_window,omitempty"`
}

func progShowCmd() *command {
	a := &inspectArgs{}
	var window time.Duration
	return &command{
		name:    "show",
		aliases: []string{"list"},
		summary: "list kflow's programs (name kflow_*) with their maps and run statistics",
		flags: func(fs *pflag.FlagSet) {
			a.register(fs)
			fs.DurationVar(&window, "stats", 0, "turn the kernel's run statistics on for `DURATION` and show each program's runs and time per run over it (costs two clock reads per run of any BPF program meanwhile)")
		},
		run: func(e *env, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, args[0])
			}
			if window < 0 {
				return fmt.Errorf("%w: --stats %s: not a duration to wait", errUsage, window)
			}
			var before map[ebpf.ProgramID]bpf.LoadedProgram
			if window > 0 {
				stats, err := bpf.EnableRunStats()
				if err != nil {
					return err
				}
				defer stats.Close()
				progs, _, err := a.selectPrograms()
				if err != nil {
					return err
				}
				before = make(map[ebpf.ProgramID]bpf.LoadedProgram, len(progs))
				for _, p := range progs {
					before[p.ID] = p
				}
				select {
				case <-time.After(window):
				case <-e.ctx.Done():
					return e.ctx.Err()
				}
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
				j.RunCount, j.RunTimeNs = p.RunCount, uint64(p.RunTime)
				if window > 0 {
					// A program loaded meanwhile ran only in the window.
					b := before[p.ID]
					j.RunCount, j.RunTimeNs = j.RunCount-b.RunCount, j.RunTimeNs-uint64(b.RunTime)
					j.StatsWindow = window.String()
				}
				if j.RunCount > 0 {
					j.NsPerRun = float64(j.RunTimeNs) / float64(j.RunCount)
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
		fmt.Fprintf(w, "%d: %s  name %s  tag %s", p.ID, p.Type, p.Name, p.Tag)
		if p.RunCount > 0 {
			fmt.Fprintf(w, "  run_time_ns %d run_cnt %d", p.RunTimeNs, p.RunCount)
		}
		fmt.Fprintln(w)
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
		if p.StatsWindow != "" {
			fmt.Fprintf(w, "\tover %s: %d runs", p.StatsWindow, p.RunCount)
			if p.RunCount > 0 {
				fmt.Fprintf(w, ", %.0f ns per run", p.NsPerRun)
			}
			fmt.Fprintln(w)
		}
	}
}

func formatLoaded(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

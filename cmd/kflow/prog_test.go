// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestProgShow(t *testing.T) {
	for _, hook := range inspectHooks() {
		t.Run(string(hook), func(t *testing.T) {
			f := newDatapath(t, hook)
			args := []string{"prog", "show", "--pin-dir", f.pin, "--pinned"}
			golden(t, "prog_show", f.mask(f.mustRun(t, false, args...)))

			var mine, all []progJSON
			if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-j"}, args...)...)), &mine); err != nil {
				t.Fatal(err)
			}
			// Without --pinned, every kflow program; the prefix and the
			// alias reach the same command.
			if err := json.Unmarshal([]byte(f.mustRun(t, false, "-j", "p", "l", "--pin-dir", f.pin)), &all); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range mine {
				names = append(names, p.Name)
				if p.PinDir != f.pin || p.Type == "" || p.Tag == "" || p.LoadedAt.IsZero() || len(p.MapIDs) == 0 {
					t.Errorf("incomplete %+v", p)
				}
				if !slices.ContainsFunc(all, func(q progJSON) bool { return q.ID == p.ID }) {
					t.Errorf("program %d (%s) missing without --pinned", p.ID, p.Name)
				}
			}
			for _, want := range []string{"kflow_tc_egress", "kflow_tc_ingress", "kflow_xdp"} {
				if !slices.Contains(names, want) {
					t.Errorf("programs %v lack %s", names, want)
				}
			}

			// Stopped with the programs kept attached: what still runs.
			f.release(t)
			golden(t, "prog_show_released_"+hookName(hook), f.mask(f.mustRun(t, false, args...)))
			if err := json.Unmarshal([]byte(f.mustRun(t, false, append([]string{"-p"}, args...)...)), &mine); err != nil {
				t.Fatal(err)
			}
			if len(mine) != 2 {
				t.Errorf("after release: %d programs, want 2 (ingress and egress)", len(mine))
			}
		})
	}
}

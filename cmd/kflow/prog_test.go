// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/bpf"
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

// TestProgShowStats checks the run statistics "prog show" reports: with
// statistics on, the egress program ran once per datagram A sent, and
// --stats reports a window's runs.
func TestProgShowStats(t *testing.T) {
	hook := inspectHooks()[0]
	f := newDatapath(t, hook)
	args := []string{"-j", "prog", "show", "--pin-dir", f.pin, "--pinned"}
	name := "kflow_tc_egress"
	if hook == bpf.HookTCX {
		name = "kflow_tcx_egress"
	}
	egress := func() progJSON {
		t.Helper()
		var progs []progJSON
		if err := json.Unmarshal([]byte(f.mustRun(t, false, args...)), &progs); err != nil {
			t.Fatal(err)
		}
		for _, p := range progs {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("no %s in %+v", name, progs)
		return progJSON{}
	}

	stats, err := bpf.EnableRunStats()
	if err != nil {
		t.Fatal(err)
	}
	before := egress()
	truth, err := f.p.UDPBlast(false, 31000, 4, 500, 200)
	if err != nil {
		t.Fatal(err)
	}
	after := egress()
	stats.Close()
	var sent uint64
	for _, c := range truth {
		sent += c.Packets
	}
	if sent == 0 {
		t.Fatal("no datagram sent")
	}
	if runs := after.RunCount - before.RunCount; runs != sent {
		t.Errorf("%s ran %d times for the %d datagrams A sent", after.Name, runs, sent)
	}
	if after.RunTimeNs <= before.RunTimeNs || after.NsPerRun <= 0 {
		t.Errorf("run time %d ns then %d ns, %.1f ns per run: want it to grow", before.RunTimeNs, after.RunTimeNs, after.NsPerRun)
	}

	// The totals, on the program's first line as bpftool prints them.
	out := f.mustRun(t, false, "prog", "show", "--pin-dir", f.pin, "--pinned")
	if want := fmt.Sprintf("name %s  tag %s  run_time_ns %d run_cnt %d\n", name, after.Tag, after.RunTimeNs, after.RunCount); !strings.Contains(out, want) {
		t.Errorf("prog show lacks %q:\n%s", want, out)
	}
	// A window without traffic: no runs in it, whatever ran before.
	out = f.mustRun(t, false, "prog", "show", "--pin-dir", f.pin, "--pinned", "--stats", "100ms")
	if strings.Count(out, "over 100ms: 0 runs\n") != strings.Count(out, "loaded_at") {
		t.Errorf("prog show --stats 100ms:\n%s", out)
	}
	if code, _, stderr := f.run(t, false, "prog", "show", "--stats", "-1s"); code == 0 || !strings.Contains(stderr, "--stats") {
		t.Errorf("--stats -1s: exit %d, %q", code, stderr)
	}
}

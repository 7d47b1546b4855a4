// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/kflow-dev/kflow/bpf"
)

// wantLinks are the BPF links a hook makes on one interface: TCX makes
// two, XDP one for ingress (and TCX for egress when the kernel has it),
// legacy TC none (its filters are not links).
func wantLinks(hook bpf.Hook) map[string]string {
	tcx := map[string]string{"ingress": "kflow_tcx_ingress", "egress": "kflow_tcx_egress"}
	switch hook {
	case bpf.HookTCX:
		return tcx
	case bpf.HookXDP:
		if bpf.HaveTCX() {
			return map[string]string{"ingress": "kflow_xdp", "egress": tcx["egress"]}
		}
		return map[string]string{"ingress": "kflow_xdp"}
	}
	return map[string]string{}
}

func TestLinkShow(t *testing.T) {
	for _, hook := range inspectHooks() {
		t.Run(string(hook), func(t *testing.T) {
			f := newDatapath(t, hook)
			args := []string{"link", "show", "--pin-dir", f.pin, "--pinned"}
			check := func(when string, inA bool) {
				t.Helper()
				var links []linkJSON
				if err := json.Unmarshal([]byte(f.mustRun(t, inA, append([]string{"-j"}, args...)...)), &links); err != nil {
					t.Fatal(err)
				}
				want := wantLinks(hook)
				if len(links) != len(want) {
					t.Errorf("%s: %d links, want %d: %+v", when, len(links), len(want), links)
				}
				for _, l := range links {
					if want[l.Direction] != l.ProgramName {
						t.Errorf("%s: %s link holds %s, want %s", when, l.Direction, l.ProgramName, want[l.Direction])
					}
					// The interface is named from this namespace, or from
					// the pin when it is in another one.
					if l.Ifname != f.p.AIf || l.Ifindex != f.p.AIndex {
						t.Errorf("%s: link on %s (%d), want %s (%d)", when, l.Ifname, l.Ifindex, f.p.AIf, f.p.AIndex)
					}
					pin := filepath.Join(f.pin, "links", f.p.AIf+"_"+l.Hook+"_"+l.Direction)
					if l.Pinned != pin {
						t.Errorf("%s: pinned %q, want %q", when, l.Pinned, pin)
					}
				}
			}
			check("in the namespace", true)
			check("from the host", false)
			golden(t, "link_show_"+hookName(hook), f.maskTable(f.mustRun(t, true, args...), 0, 5))

			f.release(t)
			check("after release", true)
			golden(t, "link_show_"+hookName(hook), f.maskTable(f.mustRun(t, true, args...), 0, 5))
			// Without --pinned, every link to a kflow program, ours among them.
			var all []linkJSON
			if err := json.Unmarshal([]byte(f.mustRun(t, false, "-j", "l", "--pin-dir", f.pin)), &all); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, l := range all {
				if l.Pinned != "" {
					n++
				}
			}
			if n != len(wantLinks(hook)) {
				t.Errorf("without --pinned: %d of our links, want %d", n, len(wantLinks(hook)))
			}
		})
	}
}

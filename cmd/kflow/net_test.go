// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kflow-dev/kflow/bpf"
)

// TestNetShow lists the programs on the interfaces of the pair's
// namespaces: kflow's on A's end, marked; none on B's.
func TestNetShow(t *testing.T) {
	for _, hook := range inspectHooks() {
		t.Run(string(hook), func(t *testing.T) {
			f := newDatapath(t, hook)
			check := func(when string) {
				t.Helper()
				var rows []netJSON
				if err := json.Unmarshal([]byte(f.mustRun(t, true, "-j", "net", "show")), &rows); err != nil {
					t.Fatal(err)
				}
				dirs := map[string]string{}
				for _, r := range rows {
					if r.Ifname != f.p.AIf || r.Ifindex != f.p.AIndex || !r.Kflow || r.ProgramID == 0 {
						t.Errorf("%s: unexpected %+v", when, r)
					}
					dirs[r.Direction] = r.Hook
				}
				egress := hook
				if hook == bpf.HookXDP {
					egress = bpf.HookTC
					if bpf.HaveTCX() {
						egress = bpf.HookTCX
					}
				}
				if len(rows) != 2 || dirs["ingress"] != string(hook) || dirs["egress"] != string(egress) {
					t.Errorf("%s: %+v, want ingress %s and egress %s", when, rows, hook, egress)
				}
			}
			check("running")
			golden(t, "net_show_"+hookName(hook), f.maskTable(f.mustRun(t, true, "n"), 4))
			f.release(t)
			check("after release")
			golden(t, "net_show_"+hookName(hook), f.maskTable(f.mustRun(t, true, "net", "list"), 4))

			// B's namespace: nothing attached, an empty JSON list.
			var code int
			var out []byte
			err := f.p.B.Do(func() error {
				var so, se bytes.Buffer
				code = run(t.Context(), []string{"-j", "net"}, &so, &se)
				out = so.Bytes()
				return nil
			})
			if err != nil || code != exitOK || string(out) != "[]\n" {
				t.Errorf("net show in B: exit %d, %q, %v", code, out, err)
			}
		})
	}
}

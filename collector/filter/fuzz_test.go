// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// FuzzParse checks that any input either compiles to a filter that can be
// matched, whose syntax tree (Expr) agrees with Match, or fails with a *SyntaxError whose position lies in the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "any", "proto tcp and dst port 443", "src net 198.18.0.0/15 or dst net fd00::/8",
		"not flags SA and (port in [ 22, 53 80 ] || bytes > 1M)", "net 10.0.0.0 255.0.0.0",
		"ip in [198.18.0.1 198.19.0.0/16]", "packets >= 10k and bps gt 1g and duration < 100",
		"src or dst port 53", "src and dst net 198.18/16", "in if 3 and out if 4 and vlan 7",
		"icmp-type 8 and icmp-code 0", "exporter 198.18.255.1", "flowdir egress", "!(tos 0)", "src or dst port 53 and out if 2",
		"proto tcp and\n# comment\nport 22", "ident Exporter_#1 or not ident x # c", "port 99999", "((((", "]]", "host ::1%eth0",
		"unit nginx or container abab and not cgroup /system.slice", "pod x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Host names resolve to a fixed address: no lookups while fuzzing.
		flt, err := ParseWith(s, func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("198.18.0.10")}, nil
		})
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %v is not a *SyntaxError", s, err)
			}
			if se.Offset < 0 || se.Offset > len(s) || se.Line < 1 || se.Column < 1 {
				t.Fatalf("Parse(%q): position %d (line %d column %d) outside the input", s, se.Offset, se.Line, se.Column)
			}
			_ = se.Caret()
			return
		}
		rev := flt.Reverse() // panics if the reversed text does not parse
		for _, r := range []*flow.Record{&web, &dns, &ping, &syn} {
			for _, x := range []*Filter{flt, rev} {
				if eval(x.Expr(), r, false) != x.Match(r) {
					t.Fatalf("%q: the syntax tree and Match disagree on %+v", x, r)
				}
			}
		}
	})
}

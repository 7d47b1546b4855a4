// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// turned returns r seen from the other side: source and destination,
// ports, interfaces and direction swapped.
func turned(r flow.Record) flow.Record {
	r.Src, r.Dst = r.Dst, r.Src
	r.SrcPort, r.DstPort = r.DstPort, r.SrcPort
	r.InIf, r.OutIf = r.OutIf, r.InIf
	r.SrcAS, r.DstAS = r.DstAS, r.SrcAS
	r.SrcMask, r.DstMask = r.DstMask, r.SrcMask
	r.Direction = 1 - r.Direction
	return r
}

func TestReverseText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"src net 198.18.0.0/15 and dst port 443", "dst net 198.18.0.0/15 and src port 443"},
		{"SRC ip 198.18.0.10 or Dst host fd00::1", "dst ip 198.18.0.10 or src host fd00::1"},
		{"src or dst port 53", "dst or src port 53"},
		{"src and dst net 198.18/16", "dst and src net 198.18/16"},
		{"in if 2 and out if 3 and if 4", "out if 2 and in if 3 and if 4"},
		{"flowdir ingress or flowdir 1", "flowdir egress or flowdir ingress"},
		{"proto tcp and port 443 # no direction", "proto tcp and port 443 # no direction"},
		{"in packets > 10 and src as 64500", "in packets > 10 and dst as 64500"},
		{"(src port in [80 443]) and not dst ip in [198.19.0.0/16]", "(dst port in [80 443]) and not src ip in [198.19.0.0/16]"},
	} {
		if got := MustParse(tt.in).Reverse().String(); got != tt.want {
			t.Errorf("reverse of %q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestReverseMatch: a record passes the reverse filter exactly when the
// turned record passes the filter.
func TestReverseMatch(t *testing.T) {
	recs := []flow.Record{web, dns, syn}
	for _, r := range recs[:] {
		recs = append(recs, turned(r))
	}
	for _, src := range []string{
		"src ip 198.18.0.10", "dst ip 198.18.0.10", "src net 198.19.0.0/16 and dst port 443",
		"src port 40000", "dst port 22", "src or dst port 53", "src and dst net fd00::/64",
		"in if 2", "out if 2", "if 3", "flowdir egress", "flowdir ingress and src port > 1024",
		"src ip in [198.18.0.10 fd00::53] and not dst port in [443]", "proto tcp and flags S",
		"not (src net 198.18.0.0/16 or in if 3)", "any",
	} {
		f := MustParse(src)
		rev := f.Reverse()
		for i := range recs {
			tr := turned(recs[i])
			if got, want := rev.Match(&recs[i]), f.Match(&tr); got != want {
				t.Errorf("%q reversed (%q) on record %d: %v, the filter on the turned record: %v", src, rev, i, got, want)
			}
			if got, want := rev.Reverse().Match(&recs[i]), f.Match(&recs[i]); got != want {
				t.Errorf("%q reversed twice on record %d: %v, want %v", src, i, got, want)
			}
		}
	}
}

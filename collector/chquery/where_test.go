// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"errors"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
)

// TestWhereErrors: a primitive the SQL cannot say is a clear error and a
// bad request; the consolidated tables decline what they do not keep.
func TestWhereErrors(t *testing.T) {
	w := where{}
	for _, e := range []filter.Expr{filter.Compare{Field: 200}, filter.InNumbers{Field: 201, Values: []uint64{1}}, filter.AddrIn{Field: filter.FieldSrcPort}, filter.Ident{Name: "x"}} {
		_, err := w.expr(filter.Not{X: e}, false)
		if !errors.Is(err, ErrFilter) || !errors.Is(err, query.ErrRequest) {
			t.Errorf("%#v: %v", e, err)
		}
	}
	for src, ok := range map[string]bool{
		"proto tcp and in if 3 and not flowdir egress": true, "exporter 198.18.255.1 or ipv6": true, "src as 64500": true,
		"port 53": false, "flags S": false, "unit nginx": false, "proto tcp and cgroup /a": false, "host 198.18.0.1": false, "bytes > 1": false, "not (proto udp and dst port 53)": false,
	} {
		cond, got, err := where{consolidated: true}.filterSQL(filter.MustParse(src))
		if err != nil || got != ok || ok && cond == "" {
			t.Errorf("%q on the sums: %q %v %v, want usable %v", src, cond, got, err, ok)
		}
	}
	// Values come from the parsed filter only.
	cond, _, err := w.filterSQL(filter.MustParse("host fd00::1%x;DROP or port in [1 2 3 4 9] and bytes > 18446744073709551615"))
	if err != nil || strings.Contains(cond, "DROP") || !strings.Contains(cond, "src_port BETWEEN 1 AND 4 OR src_port IN (9)") {
		t.Errorf("%q %v", cond, err)
	}
	// Cgroup names reach the SQL as hexadecimal only.
	cond, _, err = w.filterSQL(filter.MustParse("unit x;DROP`id`\\ or cgroup /a\\b;--"))
	if err != nil || strings.ContainsAny(cond, ";`\\") || strings.Contains(cond, "DROP") || !strings.Contains(cond, "unit = unhex('783B44524F50606964605C2E73657276696365')") {
		t.Errorf("%q %v", cond, err)
	}
	// Unknown cgroup kinds are refused.
	if _, err := w.expr(filter.Cgroup{Kind: "slice", Value: "x"}, false); !errors.Is(err, ErrFilter) {
		t.Errorf("cgroup kind slice: %v", err)
	}
}

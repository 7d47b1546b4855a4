// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// TestColumnMatcher: on the columns of a flow file, a filter's column
// matcher passes exactly the records Match passes, for every filter that
// has one; the filters of the common primitives have one.
func TestColumnMatcher(t *testing.T) {
	recs := exprRecords()
	path := filepath.Join(t.TempDir(), "f")
	w, err := flowfile.Create(path, flowfile.WriterOptions{BlockRecords: 37})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	filters := append(slices.Clone(exprFilters), "dst port 771", "proto icmp and dst port 2048", "icmp-type 8 and not src net 198.18.0.0/24",
		"not (port 443 or bytes < 100) or packets 3", "src port in [443 886] and dst net fd00::/8", "flows 2", "ipv6 or proto 47")
	columnar := map[string]bool{}
	for _, src := range filters {
		f := MustParse(src)
		for _, x := range []*Filter{f, f.Reverse()} {
			m, ok := x.ColumnMatcher()
			if !ok {
				continue
			}
			columnar[src] = true
			pos := 0
			var sel []int32
			err := flowfile.ScanFilesBlocks(context.Background(), []string{path},
				flowfile.ScanOptions{Workers: 1, Fields: flowfile.ColumnFields, Columns: true},
				func(_ int, b *flowfile.Block) error {
					sel = m.Match(b, sel)
					k := 0
					for i := range b.Len {
						want := x.Match(&recs[pos+i])
						got := k < len(sel) && int(sel[k]) == i
						if got {
							k++
						}
						if got != want {
							t.Errorf("%q on record %d (%+v): columns say %v, Match %v", x, pos+i, recs[pos+i], got, want)
						}
					}
					pos += b.Len
					return nil
				}, func(int, flowfile.ScanResult, error) {})
			if err != nil || pos != len(recs) {
				t.Fatalf("%q: scanned %d records of %d: %v", x, pos, len(recs), err)
			}
		}
	}
	for _, src := range []string{"", "any", "proto tcp", "port 443", "not dst port in [53]", "src or dst net 198.19/16", "ipv6",
		"icmp-type 8", "packets > 3", "in bytes > 1k", "proto tcp and (port 22 or port 443) and bytes > 100", "host 198.18.0.10"} {
		if !columnar[src] {
			t.Errorf("%q: no column matcher", src)
		}
	}
	for _, src := range []string{"duration > 2500", "flags S", "exporter 198.18.255.1", "unit nginx"} {
		if columnar[src] {
			t.Errorf("%q: a column matcher, for fields columns do not hold", src)
		}
	}
}

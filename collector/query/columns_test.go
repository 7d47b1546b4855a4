// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestStatsOnColumns: statistics counted on columns (the filters and
// elements that allow it) equal those counted record by record with
// Stat.Add, on files with ICMP, IPv6, records without times, ports or
// addresses, over several workers.
func TestStatsOnColumns(t *testing.T) {
	recs := benchRecords(20000)
	for i := 0; i < len(recs); i += 11 {
		r := &recs[i]
		switch i / 11 % 5 {
		case 0:
			r.Start, r.End = time.Time{}, time.Time{}
		case 1:
			r.Start = time.Time{}
		case 2:
			r.Src = netip.Addr{}
		case 3:
			r.Dst = r.Src
		case 4:
			r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode = flow.ProtoICMPv6, 0, 0, 128, 0
		}
	}
	dir := t.TempDir()
	files := []File{{Path: filepath.Join(dir, "kflow.202503140925")}, {Path: filepath.Join(dir, "kflow.202503140930")}}
	writeFile(t, files[0].Path, recs[:12345])
	writeFile(t, files[1].Path, recs[12345:])
	elems := []Element{ElemSrcIP, ElemDstIP, ElemIP, ElemSrcPort, ElemDstPort, ElemPort, ElemProto}
	for _, src := range []string{"", "proto tcp", "proto udp and dst port 53", "net 198.19.0.0/16 and bytes > 10k",
		"not (src net 198.18.0.0/24 or ipv6) and packets > 2", "icmp-type 128", "dst port 32768", "port in [22 80]"} {
		f := filter.MustParse(src)
		if _, ok := f.ColumnMatcher(); !ok {
			t.Fatalf("%q: no column matcher", src)
		}
		req := &Request{Filter: f}
		for _, e := range elems {
			req.Stats = append(req.Stats, StatSpec{Element: e, Orders: []Order{ByBytes}})
		}
		// Record by record.
		want := make([]*Stat, len(elems))
		for i, e := range elems {
			want[i] = NewStat(StatSpec{Element: e, Orders: []Order{ByBytes}})
		}
		var total Counter
		sc := &Scanner{Filter: f, Workers: 1}
		if _, err := sc.Scan(context.Background(), files, func(r *flow.Record) error {
			total.Add(r)
			for _, s := range want {
				s.Add(r)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 3} {
			res, err := (&FileBackend{Paths: []string{dir}, Workers: workers}).Query(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != total {
				t.Errorf("%q, %d workers: total %+v, want %+v", src, workers, res.Total, total)
			}
			for i, tb := range res.Stats {
				if tb.Distinct != want[i].Len() || !reflect.DeepEqual(tb.Entries, want[i].Top(ByBytes, 0)) {
					t.Errorf("%q, %d workers, %s: %d values %v,\nwant %d %v", src, workers, elems[i].Name(), tb.Distinct, tb.Entries, want[i].Len(), want[i].Top(ByBytes, 0))
				}
			}
		}
	}
}

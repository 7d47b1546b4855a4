// SPDX-License-Identifier: Apache-2.0

package query

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

// TestStreamAggregates: an unordered listing of aggregated records
// streamed gives the rows, offset and top of the one returned in
// Result.Rows, and the same count.
func TestStreamAggregates(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kflow.202503140925"), benchRecords(5000))
	be := &FileBackend{Paths: []string{dir}}
	for _, pg := range [][2]int{{0, 0}, {0, 10}, {7, 25}, {4990, 100}, {100000, 5}} {
		for _, mk := range []func() *Request{
			func() *Request { a := FiveTuple(); return &Request{Aggregate: &a} },
			func() *Request { return &Request{Bidir: PairedGuess} },
		} {
			req := mk()
			req.Offset, req.Top = pg[0], pg[1]
			want, err := be.Query(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			req = mk()
			req.Offset, req.Top = pg[0], pg[1]
			var got []Row
			req.Stream = func(w *Row) error { got = append(got, *w); return nil }
			res, err := be.Query(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != nil || res.Matched != want.Matched || len(got) != len(want.Rows) || len(got) > 0 && !reflect.DeepEqual(got, want.Rows) {
				t.Errorf("offset %d, top %d: streamed %d rows of %d (rows %d), want %d of %d", pg[0], pg[1], len(got), res.Matched, len(res.Rows), len(want.Rows), want.Matched)
			}
		}
	}
}

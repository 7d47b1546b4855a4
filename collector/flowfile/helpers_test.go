// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// norm returns r with times in UTC, the form the reader returns.
func norm(r flow.Record) flow.Record {
	r.Start, r.End = r.Start.UTC(), r.End.UTC()
	return r
}

func checkRecords(t testing.TB, got, want []flow.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := norm(got[i]), norm(want[i]); !reflect.DeepEqual(g, w) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// writeBytes writes recs to an in-memory flow file.
func writeBytes(t testing.TB, recs []flow.Record, opts WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
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
	return buf.Bytes()
}

// readBytes reads every record of an in-memory flow file.
func readBytes(t testing.TB, b []byte, opts ReaderOptions) ([]flow.Record, *Reader) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []flow.Record
	for r.Next() {
		out = append(out, *r.Record())
	}
	return out, r
}

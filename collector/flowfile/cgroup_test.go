// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestCgroupColumn: cgroups round-trip exactly, the first record of a
// block with one included or not; a block without any is written with
// the 25 columns of before (what older files hold and older readers
// expect); partial decodes agree; a damaged column is an error.
func TestCgroupColumn(t *testing.T) {
	recs := newSynthNs(3, false).Records(200)
	plain := writeBytes(t, recs, WriterOptions{})
	got, _ := readBytes(t, plain, ReaderOptions{})
	checkRecords(t, got, recs)

	paths := []string{"/system.slice/nginx.service", "/kflow-test/a b", "/docker/" + strings.Repeat("ab", 32)}
	for i := range recs {
		if i%3 != 0 {
			recs[i].CgroupID = uint64(100 + i%len(paths))
			recs[i].Cgroup = paths[i%len(paths)]
		}
	}
	recs[5].CgroupID, recs[5].Cgroup = 42, "" // an id without its path
	with := writeBytes(t, recs, WriterOptions{})
	got, _ = readBytes(t, with, ReaderOptions{})
	checkRecords(t, got, recs)

	// The block payloads directly: 25 columns without cgroups, 26 with.
	enc := newBlockEncoder()
	for _, c := range []struct {
		recs []flow.Record
		cols uint64
	}{{newSynthNs(3, false).Records(10), numCols}, {recs[:10], numCols + 1}, {recs[1:10], numCols + 1}} {
		p := enc.encode(c.recs)
		var d blockDecoder
		if err := d.preamble(p, len(c.recs)); err != nil {
			t.Fatal(err)
		}
		if n := columnCount(t, p); n != c.cols {
			t.Errorf("%d columns, want %d", n, c.cols)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		for _, need := range someFields(rng) {
			samePartial(t, &d, bytes.Clone(p), len(c.recs), need)
		}
	}

	// A damaged cgroup column: an index past the dictionary.
	p := bytes.Clone(enc.encode(recs[:10]))
	last := len(p) - 1
	p[last] = 0x7f
	var d blockDecoder
	if _, err := d.decode(p, 10, nil, AllFields); err == nil {
		t.Error("an index past the cgroup dictionary decoded without error")
	}
}

// columnCount reads the column count of a block payload.
func columnCount(t *testing.T, p []byte) uint64 {
	t.Helper()
	c := cursor{b: p}
	c.uvarint()
	c.uvarint()
	n := c.uvarint()
	for range n {
		c.addr()
	}
	v := c.uvarint()
	if c.bad {
		t.Fatal("bad preamble")
	}
	return v
}

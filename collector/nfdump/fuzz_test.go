// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"bytes"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// FuzzScan reads arbitrary bytes as an nfdump file, seeded with files
// nfcapd 1.7.1 wrote (uncompressed, LZO, LZ4, bzip2), the same file with
// zstd blocks, and the layout 1 fixtures. Whatever the input, the reader
// must return without panicking, never hand over more records than it
// counts, and stay within its block bounds.
func FuzzScan(f *testing.F) {
	for _, name := range []string{"nfcapd-1.7.1-none", "nfcapd-1.7.1-lzo", "nfcapd-1.7.1-lz4", "nfcapd-1.7.1-bz2"} {
		f.Add(readTestdata(f, name))
	}
	f.Add(rewriteV2(f, readTestdata(f, "nfcapd-1.7.1-none"), ZSTD, zstdBlock(f)))
	for _, c := range []Compression{Uncompressed, LZ4} {
		b, _ := v1Fixture(f, c, true)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		defer r.Close()
		var n uint64
		res, _ := scanReader(r, ScanOptions{Workers: 2}, func(recs []flow.Record) error {
			n += uint64(len(recs))
			return nil
		})
		if res.Records != n {
			t.Fatalf("delivered %d records, counted %d", n, res.Records)
		}
	})
}

// FuzzLZO decompresses arbitrary bytes, seeded with the blocks of the
// LZO file nfcapd wrote: errors, never a panic or an overrun.
func FuzzLZO(f *testing.F) {
	b := readTestdata(f, "nfcapd-1.7.1-lzo")
	off, size := firstBlock(b)
	f.Add(b[off+blockHeaderLen : off+blockHeaderLen+size])
	f.Add([]byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := lzoDecompress(in, nil, 1<<16)
		if err == nil && len(out) > 1<<16 {
			t.Fatalf("%d bytes past the bound", len(out))
		}
	})
}

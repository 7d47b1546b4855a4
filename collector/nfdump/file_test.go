// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// The files in testdata were written by nfcapd 1.7.1 (Debian 12) in
// TestNfcapdFiles (go test -run TestNfcapdFiles -args -update): the 30
// sample flows from three exporters, uncompressed and with -z, -y, -j.
const testdataFlows = 30

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readBytes reads a whole file held in memory.
func readBytes(t testing.TB, b []byte, workers int) ([]flow.Record, ScanResult, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)), "mem")
	if err != nil {
		return nil, ScanResult{}, err
	}
	defer r.Close()
	var recs []flow.Record
	res, err := scanReader(r, ScanOptions{Workers: workers}, func(b []flow.Record) error {
		recs = append(recs, b...)
		return nil
	})
	return recs, res, err
}

func TestTestdataFiles(t *testing.T) {
	names := []string{"nfcapd-1.7.1-none", "nfcapd-1.7.1-lzo", "nfcapd-1.7.1-lz4", "nfcapd-1.7.1-bz2"}
	for i, name := range names {
		recs, res, err := readBytes(t, readTestdata(t, name), 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) != testdataFlows || res.Records != testdataFlows || res.Header.Stat.Flows != testdataFlows ||
			res.Header.Compression != Compression([]uint8{0, 1, 3, 2}[i]) || len(res.Exporters) != 3 {
			t.Errorf("%s: %d records, %+v", name, len(recs), res)
		}
	}
}

// TestTestdataNfdump compares the testdata files record by record with
// nfdump's reading of them.
func TestTestdataNfdump(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	for _, name := range []string{"nfcapd-1.7.1-none", "nfcapd-1.7.1-lzo", "nfcapd-1.7.1-lz4", "nfcapd-1.7.1-bz2"} {
		recs, _, err := readBytes(t, readTestdata(t, name), 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range recs {
			recs[i] = asNfdumpJSON(recs[i])
		}
		compareRecords(t, name+": nfdump -o json", nfdumpJSON(t, filepath.Join("testdata", name)), recs)
	}
}

// rewriteV2 rebuilds a layout 2 file with every block (data and appendix)
// compressed by comp, from an uncompressed one, as nfcapd would have
// written it with that compression.
func rewriteV2(t testing.TB, src []byte, comp Compression, compress func([]byte) []byte) []byte {
	t.Helper()
	h := src[:headerV2Len]
	appendix := int(le64(h, 24))
	out := bytes.Clone(h)
	out[16] = byte(comp)
	pos := headerV2Len
	for pos < len(src) {
		if pos == appendix {
			binary.LittleEndian.PutUint64(out[24:], uint64(len(out)))
		}
		bh := parseBlockHeader(src[pos:])
		payload := src[pos+blockHeaderLen : pos+blockHeaderLen+int(bh.size)]
		c := compress(payload)
		nb := bytes.Clone(src[pos : pos+blockHeaderLen])
		binary.LittleEndian.PutUint32(nb[4:], uint32(len(c)))
		out = append(append(out, nb...), c...)
		pos += blockHeaderLen + int(bh.size)
	}
	return out
}

func zstdBlock(t testing.TB) func([]byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(b []byte) []byte { return enc.EncodeAll(b, nil) }
}

func lz4Block(b []byte) []byte {
	out := make([]byte, lz4.CompressBlockBound(len(b)))
	n, err := lz4.CompressBlock(b, out, nil)
	if err != nil || n == 0 {
		panic("lz4 compress")
	}
	return out[:n]
}

// TestZstd: nfdump 1.7.1 in Debian 12 is built without zstd, so the zstd
// file is the uncompressed nfcapd file with each block zstd-compressed as
// nfdump does it (one frame per block, compression 4 in the header).
func TestZstd(t *testing.T) {
	plain := readTestdata(t, "nfcapd-1.7.1-none")
	want, wantRes, err := readBytes(t, plain, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		comp Compression
		fn   func([]byte) []byte
	}{{ZSTD, zstdBlock(t)}, {LZ4, lz4Block}} {
		b := rewriteV2(t, plain, c.comp, c.fn)
		for _, workers := range []int{1, 2} {
			got, res, err := readBytes(t, b, workers)
			if err != nil {
				t.Fatalf("%v: %v", c.comp, err)
			}
			compareRecords(t, c.comp.String(), want, got)
			if res.Header.Compression != c.comp || res.Header.Stat != wantRes.Header.Stat || res.Header.Ident != wantRes.Header.Ident {
				t.Errorf("%v: header %+v", c.comp, res.Header)
			}
		}
	}
}

// firstBlock returns the offset and size of the first data block.
func firstBlock(b []byte) (off, size int) {
	return headerV2Len, int(le32(b, headerV2Len+4))
}

// findRecord returns the offset in b of the first record of type typ in
// the first (uncompressed) block.
func findRecord(t *testing.T, b []byte, typ uint16) int {
	t.Helper()
	off, size := firstBlock(b)
	p, end := off+blockHeaderLen, off+blockHeaderLen+size
	for p+4 <= end {
		if le16(b, p) == typ {
			return p
		}
		p += int(le16(b, p+2))
	}
	t.Fatalf("no record of type %d", typ)
	return 0
}

func TestDamagedAndUnfinished(t *testing.T) {
	plain := readTestdata(t, "nfcapd-1.7.1-none")
	off, size := firstBlock(plain)
	blockEnd := off + blockHeaderLen + size

	// An unfinished file, as nfcapd leaves nfcapd.current.* while writing
	// or after a crash: no appendix, no block count.
	unfinished := bytes.Clone(plain[:blockEnd])
	binary.LittleEndian.PutUint16(unfinished[18:], 0)
	binary.LittleEndian.PutUint64(unfinished[24:], 0)
	binary.LittleEndian.PutUint32(unfinished[36:], 0)
	recs, res, err := readBytes(t, unfinished, 1)
	if err != nil || len(recs) != testdataFlows || res.Truncated || res.Header.HasStat || res.Header.Ident != "" {
		t.Errorf("unfinished file: %d records, %+v, %v", len(recs), res, err)
	}
	recs, res, err = readBytes(t, unfinished[:blockEnd-7], 1)
	if err != nil || len(recs) != 0 || !res.Truncated {
		t.Errorf("unfinished file cut inside its block: %d records, truncated %v, %v", len(recs), res.Truncated, err)
	}

	lz4file := readTestdata(t, "nfcapd-1.7.1-lz4")
	mod := func(b []byte, f func([]byte)) []byte {
		b = bytes.Clone(b)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name   string
		file   []byte
		off    int64 // where the error says the fault is
		substr string
	}{
		{"cut before the appendix", plain[:blockEnd], 0, "appendix offset"},
		{"cut inside the block", mod(append(bytes.Clone(plain[:blockEnd-9]), plain[blockEnd:]...), func(b []byte) {
			binary.LittleEndian.PutUint64(b[24:], uint64(blockEnd-9))
		}), int64(off), "left"},
		{"appendix moved", mod(plain, func(b []byte) { binary.LittleEndian.PutUint64(b[24:], uint64(blockEnd-9)) }), int64(blockEnd - 9), "appendix"},
		{"block size past the file", mod(plain, func(b []byte) { binary.LittleEndian.PutUint32(b[off+4:], 1<<30) }), int64(off), "block of"},
		{"record size past the block", mod(plain, func(b []byte) {
			binary.LittleEndian.PutUint16(b[findRecord(t, b, recV3)+2:], 0xfff0)
		}), int64(off), "size 65520"},
		{"record size zero", mod(plain, func(b []byte) {
			binary.LittleEndian.PutUint16(b[findRecord(t, b, recV3)+2:], 0)
		}), int64(off), "size 0"},
		{"element past the record", mod(plain, func(b []byte) {
			p := findRecord(t, b, recV3)
			binary.LittleEndian.PutUint16(b[p+v3HeaderLen+2:], 0x400)
		}), int64(off), "length 1024"},
		{"short generic element", mod(plain, func(b []byte) {
			p := findRecord(t, b, recV3)
			binary.LittleEndian.PutUint16(b[p+v3HeaderLen+2:], 8)
		}), int64(off), "want 48"},
		{"block count", mod(plain, func(b []byte) { binary.LittleEndian.PutUint32(b[36:], 2) }), int64(blockEnd), "header says 2"},
		{"lz4 payload", mod(lz4file, func(b []byte) {
			for i := off + blockHeaderLen; i < off+blockHeaderLen+16; i++ {
				b[i] = 0xff
			}
		}), int64(off), "lz4"},
		{"not nfdump", []byte("hello, this is not a flow file at all"), 0, "not an nfdump file"},
		{"big endian", mod(plain, func(b []byte) { b[0], b[1] = 0xa5, 0x0c }), 0, "big endian"},
		{"encrypted", mod(plain, func(b []byte) { b[17] = 1 }), 0, "encrypted"},
	} {
		recs, _, err := readBytes(t, tc.file, 2)
		var fe *Error
		if !errors.As(err, &fe) || fe.Offset != tc.off || fe.Path != "mem" || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: %d records, error %v; want an *Error at offset %d saying %q", tc.name, len(recs), err, tc.off, tc.substr)
		}
	}

	// Unknown element and record types are skipped and counted.
	b := mod(plain, func(b []byte) {
		p := findRecord(t, b, recV3)
		q := p + v3HeaderLen
		for le16(b, q) != elemVLAN {
			q += int(le16(b, q+2))
		}
		binary.LittleEndian.PutUint16(b[q:], 200)
		binary.LittleEndian.PutUint16(b[findRecord(t, b, recExporterStat):], 99)
	})
	recs, res, err = readBytes(t, b, 1)
	if err != nil || len(recs) != testdataFlows || res.UnknownElements != 1 || res.UnknownRecords != 1 {
		t.Errorf("unknown types: %d records, %+v, %v", len(recs), res, err)
	}
}

// TestStopScan: ErrStopScan ends a scan without error.
func TestStopScan(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nfcapd.202501010000")
	if err := os.WriteFile(p, readTestdata(t, "nfcapd-1.7.1-lzo"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	res, err := Scan(p, ScanOptions{Workers: 2}, func([]flow.Record) error { calls++; return ErrStopScan })
	if err != nil || calls != 1 || res.Records != testdataFlows {
		t.Errorf("calls %d, %+v, %v", calls, res, err)
	}
	if _, err := Scan(filepath.Join(t.TempDir(), "missing"), ScanOptions{}, nil); err == nil {
		t.Error("scan of a missing file: no error")
	}
}

func TestLZO(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		// 17+5 = 5 literals, then the end marker (0x11 0x00 0x00).
		{"literals", []byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0}, "hello", nil},
		// 2 literals, a 3-byte copy 2 back (01 0 000 00, H=0 -> dist 1?):
		// 0x44 = 01 0 001 00: length 3, D=1, dist = 0<<3 + 1 + 1 = 2.
		{"overlapping copy", []byte{19, 'a', 'b', 0x44, 0, 0x11, 0, 0}, "ababa", nil},
		{"lookbehind", []byte{19, 'a', 'b', 0x44, 9, 0x11, 0, 0}, "", errLZOLookback},
		{"no end marker", []byte{22, 'h', 'e', 'l', 'l', 'o'}, "", errLZOInput},
		{"trailing", []byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0, 1}, "", errLZOTrailing},
		{"long literal run", append(append([]byte{0, 0, 1}, bytes.Repeat([]byte{'x'}, 3+15+255+1)...), 0x11, 0, 0), strings.Repeat("x", 274), nil},
		{"empty", nil, "", errLZOInput},
	} {
		got, err := lzoDecompress(tc.in, nil, 1000)
		if !errors.Is(err, tc.err) || (err == nil && string(got) != tc.want) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	if _, err := lzoDecompress([]byte{22, 'h', 'e', 'l', 'l', 'o', 0x11, 0, 0}, nil, 4); !errors.Is(err, errLZOOutput) {
		t.Errorf("output bound: %v", err)
	}
}

func TestIsFileName(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		ok   bool
		want string // RFC 3339, "" for a current file
	}{
		{"nfcapd.202501021504", true, "2025-01-02T15:04:00+01:00"},
		{"nfcapd.20250102150405", true, "2025-01-02T15:04:05+01:00"},
		{"nfcapd.202501021504+0000", true, "2025-01-02T16:04:00+01:00"},
		{"nfcapd.202507021504-0200", true, "2025-07-02T18:04:00+01:00"},
		{"nfcapd.current.12345", true, ""},
		{"nfcapd.current.", false, ""},
		{"nfcapd.2025010215", false, ""},
		{"nfcapd.202501021504.1", false, ""},
		{"nfcapd.2025x1021504", false, ""},
		{"nfcapd.202513021504", false, ""},
		{"kflow.202501021504", false, ""},
		{"nfcapd.202501021504+01", false, ""},
	} {
		slot, ok := IsFileName(tc.name, cet)
		got := ""
		if !slot.IsZero() {
			got = slot.Format("2006-01-02T15:04:05Z07:00")
		}
		if ok != tc.ok || got != tc.want {
			t.Errorf("IsFileName(%q) = %s, %v; want %s, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

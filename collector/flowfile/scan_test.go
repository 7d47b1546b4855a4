// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// scanAll reads a file with Scan.
func scanAll(t *testing.T, path string, workers int) ([]flow.Record, ScanResult) {
	t.Helper()
	var got []flow.Record
	res, err := Scan(path, ScanOptions{Workers: workers}, func(recs []flow.Record) error {
		got = append(got, recs...)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got, res
}

// TestScanLikeReader: Scan returns what a Reader with SkipCorrupt returns,
// for clean, cut short, corrupt and resynchronised files.
func TestScanLikeReader(t *testing.T) {
	recs := newSynth(7).Records(5000)
	file := writeBytes(t, recs, WriterOptions{BlockRecords: 300})
	dir := t.TempDir()
	// Offsets of the blocks, from a Reader.
	r, err := NewReader(bytes.NewReader(file), int64(len(file)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs, _, ok, err := r.sections()
	if err != nil || !ok || len(secs) < 10 {
		t.Fatalf("sections: %d %v %v", len(secs), ok, err)
	}
	corrupt := bytes.Clone(file)
	corrupt[secs[3].off+10] ^= 0xff // a payload byte: checksum fails
	header := bytes.Clone(file)
	header[secs[5].off-sectionHeaderLen+6] ^= 0xff // a header byte: resync
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"clean", file},
		{"cut", file[:secs[8].off+100]},
		{"no-summary", file[:secs[len(secs)-1].off+int64(secs[len(secs)-1].length)]},
		{"corrupt-block", corrupt},
		{"bad-header", header},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, tt.b, 0o644); err != nil {
				t.Fatal(err)
			}
			want, rd := readBytes(t, tt.b, ReaderOptions{SkipCorrupt: true})
			for _, workers := range []int{1, 3} {
				got, res := scanAll(t, p, workers)
				checkRecords(t, got, want)
				if res.Records != uint64(len(want)) || res.Corrupt != len(rd.Corrupt()) || res.End != rd.End().Kind ||
					res.Blocks != rd.End().Blocks || (res.Summary != nil) != (rd.summary != nil) {
					t.Errorf("workers %d: result %+v, reader end %+v corrupt %d", workers, res, rd.End(), len(rd.Corrupt()))
				}
				// Keep: the records kept, in order, and every record
				// read still counted.
				keep := func(r *flow.Record) bool { return r.Proto == flow.ProtoTCP && r.Packets%3 != 0 }
				var wantKept []flow.Record
				for _, r := range want {
					if keep(&r) {
						wantKept = append(wantKept, r)
					}
				}
				if len(wantKept) == 0 || len(wantKept) == len(want) {
					t.Fatalf("keep kept %d of %d: not a test of it", len(wantKept), len(want))
				}
				// With KeepFields too: the fields keep reads first.
				for _, kf := range []Fields{0, FieldProto | FieldPackets} {
					var kept []flow.Record
					kres, err := Scan(p, ScanOptions{Workers: workers, Keep: keep, KeepFields: kf}, func(recs []flow.Record) error {
						kept = append(kept, recs...)
						return nil
					})
					if err != nil {
						t.Fatalf("Scan with Keep: %v", err)
					}
					checkRecords(t, kept, wantKept)
					if (kres.Summary != nil) != (res.Summary != nil) {
						t.Errorf("workers %d, Keep: summary %v, want %v", workers, kres.Summary != nil, res.Summary != nil)
					}
					r := res
					kres.Summary, r.Summary = nil, nil
					if kres != r {
						t.Errorf("workers %d, Keep, KeepFields %#x: result %+v, want %+v", workers, kf, kres, r)
					}
				}
			}
		})
	}
	// Stopping early.
	p := filepath.Join(dir, "clean")
	n := 0
	res, err := Scan(p, ScanOptions{Workers: 2}, func(recs []flow.Record) error {
		n++
		if n == 3 {
			return ErrStopScan
		}
		return nil
	})
	if err != nil || n != 3 || res.Records != 900 {
		t.Errorf("stop: %d calls, %+v, %v", n, res, err)
	}
	boom := errors.New("boom")
	if _, err := Scan(p, ScanOptions{}, func([]flow.Record) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
	if _, err := Scan(filepath.Join(dir, "missing"), ScanOptions{}, func([]flow.Record) error { return nil }); err == nil {
		t.Error("missing file: no error")
	}
}

func BenchmarkScan(b *testing.B) {
	recs := newSynth(1).Records(1 << 16)
	file := writeBytes(b, recs, WriterOptions{})
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1, 2} {
		b.Run([]string{"", "1worker", "2workers"}[w], func(b *testing.B) {
			var n int
			for b.Loop() {
				if _, err := Scan(p, ScanOptions{Workers: w}, func(r []flow.Record) error { n += len(r); return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkDecodeBlock measures decoding a block payload (no
// decompression), all fields and a query's few.
func BenchmarkDecodeBlock(b *testing.B) {
	recs := newSynth(1).Records(DefaultBlockRecords)
	raw := bytes.Clone(newBlockEncoder().encode(recs))
	for _, bb := range []struct {
		name string
		need Fields
	}{{"all", AllFields}, {"src-bytes-times", FieldSrc | FieldOctets | FieldTimes}} {
		b.Run(bb.name, func(b *testing.B) {
			var d blockDecoder
			dst := make([]flow.Record, 0, len(recs))
			for b.Loop() {
				dst, _ = d.decode(raw, len(recs), dst, bb.need)
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestScanPieces: blocks larger than a piece come in pieces, in order,
// whole or through Keep; the records read count whole blocks, also when
// the callback stops in the middle of one; a corrupt block gives none.
func TestScanPieces(t *testing.T) {
	recs := newSynth(11).Records(3*scanPiece + 4000)
	file := writeBytes(t, recs, WriterOptions{BlockRecords: 2*scanPiece + 100})
	r, err := NewReader(bytes.NewReader(file), int64(len(file)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs, _, ok, err := r.sections()
	if err != nil || !ok || len(secs) != 3 {
		t.Fatalf("sections: %d %v %v", len(secs), ok, err)
	}
	corrupt := bytes.Clone(file)
	corrupt[secs[1].off+10] ^= 0xff
	dir := t.TempDir()
	for name, b := range map[string][]byte{"clean": file, "corrupt": corrupt} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, rd := readBytes(t, b, ReaderOptions{SkipCorrupt: true})
		for _, workers := range []int{1, 2, 4} {
			var got []flow.Record
			calls := 0
			res, err := Scan(p, ScanOptions{Workers: workers}, func(rs []flow.Record) error {
				if len(rs) == 0 || len(rs) > scanPiece {
					t.Errorf("a piece of %d records", len(rs))
				}
				calls++
				got = append(got, rs...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, want)
			if res.Records != uint64(len(want)) || res.Corrupt != len(rd.Corrupt()) || calls <= res.Blocks-res.Corrupt {
				t.Errorf("%s, %d workers: %+v in %d calls", name, workers, res, calls)
			}
			// Stopped in the middle of the first block: that block's
			// records were read.
			n := 0
			res, err = Scan(p, ScanOptions{Workers: workers}, func(rs []flow.Record) error {
				if n++; n == 2 {
					return ErrStopScan
				}
				return nil
			})
			if err != nil || n != 2 || res.Records != uint64(secs[0].count) {
				t.Errorf("%s, %d workers, stop: %d calls, %+v, %v", name, workers, n, res, err)
			}
		}
	}
}
